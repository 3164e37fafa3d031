//! Rates and connection counts shared by several Rostfix machines through Redis
//! (`rostfix_anvil_redis_server`, issue 20): a client that uses up its
//! smtpd_client_*_rate_limit, or holds its smtpd_client_connection_count_limit, on
//! one machine is refused by the others.
//!
//! The algorithm is the sliding window counter: per client address and event kind, one
//! Redis counter per `anvil_rate_time_unit` window (INCR, expiring after two windows);
//! the rate is the current window's count plus the previous window's weighted by how
//! much of it still overlaps the sliding window. One pipelined round trip per event.
//! Windows are numbered from the Unix epoch, so machines must keep their clocks in
//! step (NTP); keys are `PREFIX + kind + ":" + address + ":" + window`, with no
//! service name, so every service and machine sharing the prefix shares the limit.
//!
//! Simultaneous connections are leases: per client address one sorted set
//! (`PREFIX conncount:ADDRESS`) whose members are this anvil's open connections
//! (`MACHINE:N`, MACHINE being myhostname and the process id) scored with the time
//! their lease ends. Connecting drops the expired members, adds its own and counts
//! the set (one pipelined round trip); disconnecting removes it; every third of
//! `rostfix_anvil_connection_lease` anvil renews the leases of the connections it
//! still holds. A machine that crashes or loses its network cannot count them down:
//! its connections stop counting when their lease ends, not never.
//!
//! When Redis cannot be reached (or answers wrongly), anvil answers from its local
//! table, as without Redis, and logs the switch once; it tries Redis again at most
//! every [`rostfix_resp::RETRY_EVERY`] so a dead server does not slow every event, and logs when
//! shared limits are back (the policy of rostfix_resp's `Shared`, which qmgr's shared
//! shaping rates follow too).

use rostfix_resp::{Connection, Reply, RespError, Shared};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The event kinds, as they appear in keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connection,
    Message,
    Recipient,
    Auth,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Connection => "conn",
            Kind::Message => "msg",
            Kind::Recipient => "rcpt",
            Kind::Auth => "auth",
        }
    }
}

/// The sliding window estimate: `current` plus the part of `previous` that the window
/// ending now still covers (`elapsed` is the fraction of the current window gone).
pub fn sliding_rate(previous: u64, current: u64, elapsed: f64) -> u32 {
    let weight = (1.0 - elapsed).clamp(0.0, 1.0);
    let estimate = current as f64 + previous as f64 * weight;
    u32::try_from(estimate.ceil() as u64).unwrap_or(u32::MAX)
}

/// Milliseconds since the Unix epoch (the lease scores).
fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// The connection to Redis and whether it is usable.
#[derive(Debug)]
pub struct SharedLimits {
    prefix: String,
    unit: Duration,
    /// rostfix_anvil_connection_lease.
    lease: Duration,
    server: Shared,
}

impl SharedLimits {
    pub fn new(address: &str, prefix: &str, unit: Duration, lease: Duration) -> SharedLimits {
        SharedLimits {
            prefix: prefix.to_string(),
            unit: unit.max(Duration::from_secs(1)),
            lease: lease.max(Duration::from_secs(3)),
            server: Shared::new(address, "", "client rate limits and connection counts"),
        }
    }

    /// How often the leases of held connections are renewed.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// Counts one event of `kind` from `address` and returns the shared rate, or None
    /// when Redis cannot answer (the caller then uses its local rate).
    pub fn count(&mut self, kind: Kind, address: &str) -> Option<u32> {
        let (prefix, unit) = (&self.prefix, self.unit);
        self.server
            .call(|conn| try_count(conn, prefix, unit, kind, address))
    }

    /// Leases a connection slot `member` for `address` and returns the number of
    /// connections from `address` on every machine, this one included; None when
    /// Redis cannot answer (the local count stands).
    pub fn connect(&mut self, address: &str, member: &str) -> Option<u32> {
        let key = self.conn_key(address);
        let now = now_ms();
        let until = now.saturating_add(u64::try_from(self.lease.as_millis()).unwrap_or(0));
        let commands = vec![
            vec![
                "ZREMRANGEBYSCORE".to_string(),
                key.clone(),
                "-inf".to_string(),
                now.to_string(),
            ],
            vec![
                "ZADD".to_string(),
                key.clone(),
                until.to_string(),
                member.to_string(),
            ],
            vec![
                "PEXPIRE".to_string(),
                key.clone(),
                (self.lease.as_millis() * 2).to_string(),
            ],
            vec!["ZCARD".to_string(), key],
        ];
        self.server
            .call(|conn| match conn.pipeline(&commands)?.get(3) {
                Some(Reply::Integer(n)) => Ok(u32::try_from(*n).unwrap_or(u32::MAX)),
                other => Err(RespError::Protocol(format!("ZCARD answered {other:?}"))),
            })
    }

    /// Gives the slot of a closed connection back.
    pub fn disconnect(&mut self, address: &str, member: &str) {
        let command = vec![vec![
            "ZREM".to_string(),
            self.conn_key(address),
            member.to_string(),
        ]];
        let _ = self.server.call(|conn| conn.pipeline(&command).map(|_| ()));
    }

    /// Renews the leases of the connections this machine holds: (address, member).
    pub fn renew(&mut self, held: &[(String, String)]) {
        if held.is_empty() {
            return;
        }
        let until = now_ms().saturating_add(u64::try_from(self.lease.as_millis()).unwrap_or(0));
        let ttl = (self.lease.as_millis() * 2).to_string();
        let mut commands = Vec::with_capacity(held.len() * 2);
        for (address, member) in held {
            let key = self.conn_key(address);
            // XX: a member that was given back meanwhile is not brought back.
            commands.push(vec![
                "ZADD".to_string(),
                key.clone(),
                "XX".to_string(),
                until.to_string(),
                member.clone(),
            ]);
            commands.push(vec!["PEXPIRE".to_string(), key, ttl.clone()]);
        }
        let _ = self
            .server
            .call(|conn| conn.pipeline(&commands).map(|_| ()));
    }

    fn conn_key(&self, address: &str) -> String {
        format!("{}conncount:{address}", self.prefix)
    }
}

/// One event counted in the current window, and the sliding rate read back.
fn try_count(
    conn: &mut Connection,
    prefix: &str,
    window_unit: Duration,
    kind: Kind,
    address: &str,
) -> Result<u32, RespError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let unit = window_unit.as_secs_f64();
    let window = (now / unit).floor() as u64;
    let elapsed = (now - window as f64 * unit) / unit;
    let key = |w: u64| format!("{prefix}{}:{address}:{w}", kind.key());
    let ttl_ms = (window_unit.as_millis() * 2).to_string();
    let commands = vec![
        vec!["INCR".to_string(), key(window)],
        vec!["PEXPIRE".to_string(), key(window), ttl_ms],
        vec!["GET".to_string(), key(window.saturating_sub(1))],
    ];
    let replies = conn.pipeline(&commands)?;
    let current = match replies.first() {
        Some(Reply::Integer(n)) => u64::try_from(*n).unwrap_or(0),
        other => return Err(RespError::Protocol(format!("INCR answered {other:?}"))),
    };
    let previous = match replies.get(2) {
        Some(Reply::Bulk(None)) => 0,
        Some(Reply::Bulk(Some(v))) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| RespError::Protocol("previous window is not a number".into()))?,
        other => return Err(RespError::Protocol(format!("GET answered {other:?}"))),
    };
    Ok(sliding_rate(previous, current, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_weights_the_previous_window() {
        assert_eq!(sliding_rate(0, 3, 0.5), 3);
        assert_eq!(sliding_rate(10, 1, 0.0), 11);
        assert_eq!(sliding_rate(10, 1, 0.75), 4);
        assert_eq!(sliding_rate(10, 1, 1.0), 1);
        assert_eq!(sliding_rate(u64::MAX, 1, 0.0), u32::MAX);
    }

    #[test]
    fn unreachable_redis_answers_none_and_waits_before_retrying() {
        // Port 9 on loopback: nothing listens (the tests' DNS default uses it too).
        let mut s = SharedLimits::new(
            "127.0.0.1:9",
            "t:",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert_eq!(s.count(Kind::Connection, "192.0.2.1"), None);
        assert!(s.server.down_since().is_some());
        let tried = s.server.down_since();
        assert_eq!(s.count(Kind::Connection, "192.0.2.1"), None);
        assert_eq!(s.connect("192.0.2.1", "m:1"), None);
        assert_eq!(
            s.server.down_since(),
            tried,
            "no new attempt within RETRY_EVERY"
        );
    }
}
