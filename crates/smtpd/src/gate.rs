//! The connect-time checks done before the SMTP greeting, for TCP clients: the
//! pre-greeting check (`rostfix_smtpd_greet_pause`) and the anvil connection count and
//! rate limits. Either can end the connection with one reply; otherwise the session
//! gets the anvil handle for its per-command limits.
//!
//! Pre-greeting: Postfix does this in postscreen (postscreen_greet_wait), which Rostfix
//! does not have; smtpd does it itself when the pause is non-zero. A client that sends
//! anything before our 220 is a bot that does not wait for the server (RFC 5321 3.1);
//! it gets `554 5.5.1 Error: SMTP protocol synchronization` and is logged as
//! `PREGREET N after T from host[addr]: text`. Off by default (0s): a pause delays
//! every honest client too. Skipped with smtpd_tls_wrappermode, where the client
//! speaks first by design.

use crate::anvil_client::{connection_reply, Anvil, ConnectVerdict};
use crate::client::ClientInfo;
use crate::limits::{pregreet_check, PreGreet};
use crate::reply::Reply;
use crate::settings::Settings;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

/// The reply to a client that talked before the greeting.
pub fn pregreet_reply() -> Reply {
    Reply::new(554, "5.5.1", "Error: SMTP protocol synchronization")
}

/// Runs the checks; Some(anvil) when the session may go on, None when the client was
/// answered (or vanished) and must be dropped.
pub fn admit(
    settings: &Settings,
    service: &str,
    client: &ClientInfo,
    stream: &mut TcpStream,
) -> Option<Anvil> {
    let who = client.log_name();
    let proto = &settings.proto;
    if !proto.greet_pause.is_zero() && !settings.tls.wrappermode {
        let started = Instant::now();
        match pregreet_check(stream, proto.greet_pause, settings.timeout) {
            Ok(PreGreet::Quiet) => {}
            Ok(PreGreet::Talked(bytes)) => {
                let shown: String = String::from_utf8_lossy(&bytes)
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .take(60)
                    .collect();
                log::info!("connect from {who}");
                log::info!(
                    "PREGREET {} after {:.2} from {who}: {shown}",
                    bytes.len(),
                    started.elapsed().as_secs_f64()
                );
                let reply = pregreet_reply();
                crate::metrics::reject("CONNECT", "rostfix_smtpd_greet_pause", reply.code());
                log::info!(
                    "NOQUEUE: reject: CONNECT from {who}: {}; proto=SMTP",
                    reply.log_text()
                );
                send(stream, &reply);
                log::info!("disconnect from {who}");
                return None;
            }
            Ok(PreGreet::Closed) => {
                log::info!("connect from {who}");
                log::info!("lost connection before the greeting from {who}");
                log::info!("disconnect from {who}");
                return None;
            }
            Err(e) => {
                log::warn!("pre-greeting check for {who}: {e}");
                return None;
            }
        }
    }
    if !proto.limits_apply(client.ip) {
        return Some(Anvil::disabled());
    }
    let address = client.addr();
    let (anvil, verdict) = Anvil::connect(
        Path::new("."),
        service,
        &address,
        &who,
        proto.client_limits.clone(),
    );
    match verdict {
        ConnectVerdict::Allowed => Some(anvil),
        ConnectVerdict::TooManyConnections(_) | ConnectVerdict::RateExceeded(_) => {
            log::info!("connect from {who}");
            let reply = connection_reply(&settings.myhostname, &address);
            crate::metrics::reject("CONNECT", "anvil", reply.code());
            send(stream, &reply);
            log::info!("disconnect from {who}");
            None
        }
    }
}

/// Sends the one reply, then half-closes and drains what the client already sent: a
/// close with unread input makes the kernel send RST, which can destroy our reply
/// before the client reads it. Bounded: at most [`DRAIN_LIMIT`] bytes, [`DRAIN_TIME`].
fn send(stream: &mut TcpStream, reply: &Reply) {
    let mut out = Vec::new();
    reply.render_into(&mut out);
    if let Err(e) = stream.write_all(&out) {
        log::debug!("cannot send the reply: {e}");
        return;
    }
    if stream.shutdown(std::net::Shutdown::Write).is_err()
        || stream.set_read_timeout(Some(DRAIN_TIME)).is_err()
    {
        return;
    }
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_LIMIT && started.elapsed() < DRAIN_TIME {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// How much input is read and dropped after a connect-time refusal.
const DRAIN_LIMIT: usize = 64 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);
