//! A PTR query sent straight to the `rostfix_dns_servers` name servers over UDP.
//! hickory's resolver answers every 127.0.0.0/8 and ::1 PTR query with `localhost`
//! itself (RFC 6761) without asking any server, so with it a test's DNS server could
//! never name a loopback client; with the system configuration smtpd keeps using
//! hickory (and /etc/hosts), as Postfix's C library resolver would.

use super::dns::Answer;
use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The PTR names of `ip` from `servers` (two rounds, `timeout` per server).
pub fn ptr(servers: &[SocketAddr], ip: IpAddr, timeout: Duration) -> Answer<Vec<String>> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from(ip), RecordType::PTR));
    let Ok(wire) = msg.to_vec() else {
        return Answer::TempFail;
    };
    for _ in 0..2 {
        for server in servers {
            if let Some(answer) = ask(*server, &wire, msg.metadata.id, timeout) {
                return answer;
            }
        }
    }
    Answer::TempFail
}

/// One server's answer; None when it did not give one (timeout, refusal, garbage),
/// so the next server is asked.
fn ask(server: SocketAddr, wire: &[u8], id: u16, timeout: Duration) -> Option<Answer<Vec<String>>> {
    let local: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let sock = UdpSocket::bind(local).ok()?;
    sock.connect(server).ok()?;
    sock.send(wire).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = sock.recv(&mut buf).ok()?;
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        // A reply to another query (or a forged one) is not ours.
        if reply.metadata.id != id {
            continue;
        }
        return match reply.metadata.response_code {
            ResponseCode::NoError => {
                let names: Vec<String> = reply
                    .answers
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_string()),
                        _ => None,
                    })
                    .collect();
                Some(if names.is_empty() {
                    Answer::NotFound
                } else {
                    Answer::Found(names)
                })
            }
            ResponseCode::NXDomain => Some(Answer::NotFound),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_server_is_a_temporary_failure() {
        // A closed loopback port refuses at once.
        let servers = ["127.0.0.1:9".parse().unwrap()];
        let a = ptr(
            &servers,
            "127.0.0.2".parse().unwrap(),
            Duration::from_millis(500),
        );
        assert_eq!(a, Answer::TempFail);
    }
}
