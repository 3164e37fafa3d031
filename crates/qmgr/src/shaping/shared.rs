//! Shaping bucket rates shared by several machines through Redis
//! (`rostfix_shaping_redis_server`, issue 20): a provider's rate in the rules file is
//! then the rate of all machines together, and a back-off one machine makes after a
//! throttling reply is adopted by the others.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! number: the theoretical arrival time of the next message), run in Redis by one Lua
//! script so asking is atomic across machines, with Redis's own clock (`TIME`) so the
//! machines' clocks need not agree. A machine asks for a small batch of tokens at a
//! time (bucket.rs) and spends them locally, so Redis sees one round trip per batch,
//! not per message. The same script keeps the lowest rate any machine cut its bucket
//! to, for `cooloff` after the last cut; the GCRA uses that rate, and every answer
//! carries it so the other machines back off too.
//!
//! One helper thread owns the connection, off the main loop, and answers over the
//! main loop's event channel. When Redis cannot answer within
//! [`rostfix_resp::REDIS_TIMEOUT`], the
//! answer is [`Grant::Unreachable`]: the bucket runs on this machine's own token bucket
//! (as without Redis) and asks again after [`RETRY_EVERY`]; the switch and the return
//! are logged once each.

use crate::event::Event;
use rostfix_resp::{Connection, Reply, RespError, Shared, RETRY_EVERY};
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

/// GCRA with a quantity, plus the shared cut. KEYS: the arrival-time key, the cut key.
/// ARGV: rate per hour, burst, tokens wanted, this machine's cut (0: none), cool-off
/// in ms. Returns "GRANTED WAIT_US SHARED_RATE" (SHARED_RATE 0: no cut in force).
/// Times are microseconds from Redis's clock; Lua numbers are doubles, exact to 2^53.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = math.max(tonumber(ARGV[2]), 1)
local want = tonumber(ARGV[3])
local cut = tonumber(ARGV[4])
local cool = math.max(tonumber(ARGV[5]), 1)
if cut > 0 then
  local old = tonumber(redis.call('GET', KEYS[2]))
  if old == nil or cut < old then
    redis.call('SET', KEYS[2], cut, 'PX', cool)
  else
    redis.call('PEXPIRE', KEYS[2], cool)
  end
end
local shared = tonumber(redis.call('GET', KEYS[2])) or 0
if shared > 0 and shared < rate then rate = shared end
local interval = 3600000000 / rate
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local room = math.floor((now + tolerance - tat) / interval)
local granted = math.max(math.min(want, room), 0)
tat = tat + granted * interval
local wait = 0
if granted < want then wait = math.ceil(tat + interval - tolerance - now) end
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return string.format('%d %d %d', granted, wait, shared)
"#;

/// A bucket's ask (made by [`super::bucket::Bucket::ask`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// Tokens wanted now (0: only publishing a cut).
    pub want: u32,
    /// The rule's rate per hour (the provider's, for all machines) and burst.
    pub rate: u32,
    pub burst: u32,
    /// This machine cut its rate to this: the others should too.
    pub cut: Option<u32>,
    pub cooloff: Duration,
}

/// Redis's answer to an ask.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// Tokens for this machine; when fewer than wanted, the next token is due after
    /// `wait`. `shared_rate` is the lowest rate a machine cut to within its cool-off
    /// (0: none).
    Given {
        tokens: u32,
        wait: Duration,
        shared_rate: u32,
    },
    /// Redis did not answer: use the local rate, ask again after `retry`.
    Unreachable { retry: Duration },
}

/// The request side of the Redis thread.
#[derive(Debug)]
pub struct SharedRates {
    tx: Sender<(String, Ask)>,
}

impl SharedRates {
    /// Starts the thread for the Redis server at `address` (host:port; an IP address,
    /// qmgr runs chrooted), keys under `prefix`. Answers come as [`Event::Grant`].
    pub fn start(address: String, prefix: String, events: Sender<Event>) -> std::io::Result<Self> {
        let (tx, rx) = channel::<(String, Ask)>();
        std::thread::Builder::new()
            .name("shaping-redis".into())
            .spawn(move || {
                let mut redis = Redis::new(address, prefix);
                while let Ok((bucket, ask)) = rx.recv() {
                    let grant = redis.ask(&bucket, &ask);
                    if events.send(Event::Grant(bucket, grant)).is_err() {
                        return; // the main loop is gone
                    }
                }
            })?;
        Ok(SharedRates { tx })
    }

    /// Sends `bucket`'s ask; false when the thread has ended.
    pub fn ask(&self, bucket: &str, ask: Ask) -> bool {
        self.tx.send((bucket.to_string(), ask)).is_ok()
    }
}

/// The connection and whether Redis is usable (rostfix_resp's fallback policy).
pub struct Redis {
    prefix: String,
    server: Shared,
}

impl Redis {
    pub fn new(address: String, prefix: String) -> Redis {
        Redis {
            prefix,
            server: Shared::new(&address, "shaping: ", "bucket rates"),
        }
    }

    /// One ask, answered from Redis or, when it fails, as unreachable (logged once per
    /// outage; tried again at most every [`RETRY_EVERY`]).
    pub fn ask(&mut self, bucket: &str, ask: &Ask) -> Grant {
        let prefix = &self.prefix;
        self.server
            .call(|conn| try_ask(conn, prefix, bucket, ask))
            .unwrap_or(Grant::Unreachable { retry: RETRY_EVERY })
    }
}

/// One ask: the script's round trip and its answer read.
fn try_ask(
    conn: &mut Connection,
    prefix: &str,
    bucket: &str,
    ask: &Ask,
) -> Result<Grant, RespError> {
    let command = vec![
        "EVAL".to_string(),
        SCRIPT.to_string(),
        "2".to_string(),
        format!("{prefix}tat:{bucket}"),
        format!("{prefix}cut:{bucket}"),
        ask.rate.max(1).to_string(),
        ask.burst.to_string(),
        ask.want.to_string(),
        ask.cut.unwrap_or(0).to_string(),
        ask.cooloff.as_millis().to_string(),
    ];
    match conn.pipeline(&[command])?.pop() {
        Some(Reply::Bulk(Some(text))) => parse_answer(&String::from_utf8_lossy(&text)),
        other => Err(RespError::Protocol(format!("script answered {other:?}"))),
    }
}

/// The script's "GRANTED WAIT_US SHARED_RATE".
fn parse_answer(text: &str) -> Result<Grant, RespError> {
    let bad = || RespError::Protocol(format!("script answered {text:?}"));
    let mut fields = text.split(' ').map(|f| f.parse::<u64>().map_err(|_| bad()));
    let (Some(tokens), Some(wait), Some(shared), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    Ok(Grant::Given {
        tokens: u32::try_from(tokens?).map_err(|_| bad())?,
        wait: Duration::from_micros(wait?),
        shared_rate: u32::try_from(shared?).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn parses_the_script_answer() {
        assert_eq!(
            parse_answer("3 0 0").unwrap(),
            Grant::Given {
                tokens: 3,
                wait: Duration::ZERO,
                shared_rate: 0
            }
        );
        assert_eq!(
            parse_answer("0 250000 1800").unwrap(),
            Grant::Given {
                tokens: 0,
                wait: Duration::from_millis(250),
                shared_rate: 1800
            }
        );
        for bad in ["", "1 2", "1 2 3 4", "-1 0 0", "a 0 0", "1 0 x"] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
    }

    fn ask(want: u32, rate: u32, burst: u32, cut: Option<u32>) -> Ask {
        Ask {
            want,
            rate,
            burst,
            cut,
            cooloff: Duration::from_secs(60),
        }
    }

    /// The script against a real redis-server: GCRA grants, shared cut, fallback.
    #[test]
    fn the_script_shares_the_rate_and_the_cut_in_a_real_redis() {
        const REDIS: &str = "/usr/bin/redis-server";
        if !rostfix_testsupport::root_with(&[REDIS]) {
            return;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(format!("qmgr-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = std::process::Command::new(REDIS)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--protected-mode", "no", "--dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&address).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Two machines on one bucket: 3600/h (one a second), burst 4.
        let mut a = Redis::new(address.clone(), "t:".into());
        let mut b = Redis::new(address.clone(), "t:".into());
        let given = |g: Grant| match g {
            Grant::Given {
                tokens,
                wait,
                shared_rate,
            } => (tokens, wait, shared_rate),
            Grant::Unreachable { .. } => panic!("redis unreachable"),
        };
        let (n, _, _) = given(a.ask("p", &ask(3, 3600, 4, None)));
        assert_eq!(n, 3);
        // The other machine gets only what is left of the shared burst.
        let (n, wait, _) = given(b.ask("p", &ask(3, 3600, 4, None)));
        assert_eq!(n, 1);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let (n, _, _) = given(a.ask("p", &ask(3, 3600, 4, None)));
        assert_eq!(n, 0, "the shared rate is used up");
        // A cut by one machine is seen by the other and slows the shared rate.
        let (_, _, shared) = given(b.ask("q", &ask(0, 3600, 1, Some(900))));
        assert_eq!(shared, 900);
        let (_, _, shared) = given(a.ask("q", &ask(1, 3600, 1, None)));
        assert_eq!(shared, 900);
        let (_, wait, _) = given(a.ask("q", &ask(1, 3600, 1, None)));
        assert!(
            wait > Duration::from_secs(3),
            "4 s apart at 900/h: {wait:?}"
        );
        // A higher cut does not raise the lower one.
        let (_, _, shared) = given(b.ask("q", &ask(0, 3600, 1, Some(1800))));
        assert_eq!(shared, 900);
        // Redis gone: unreachable at once, and no new connection tried for a while.
        server.kill().unwrap();
        server.wait().unwrap();
        assert!(matches!(
            a.ask("p", &ask(1, 3600, 4, None)),
            Grant::Unreachable { .. }
        ));
        let t = Instant::now();
        assert!(matches!(
            a.ask("p", &ask(1, 3600, 4, None)),
            Grant::Unreachable { .. }
        ));
        assert!(t.elapsed() < Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
