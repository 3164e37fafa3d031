//! A minimal Redis client (RESP2) for the state several machines share (issue 20):
//! anvil's client rate limits and connection counts, qmgr's shaping buckets. Sends
//! commands as arrays of bulk strings, pipelined, and reads integer, status, error,
//! bulk and nil replies. Written here rather than pulling in the redis crate: the
//! users need a handful of commands, strict time bounds on every call and bounded
//! reads, and nothing else.
//!
//! Bounds: every call has the connection's read/write timeout; a reply line is at most
//! [`MAX_LINE`] bytes and a bulk string at most [`MAX_BULK`] bytes; arrays (not sent by
//! the commands used here) are refused. fallback.rs holds the policy of its users when
//! the server does not answer.

#![forbid(unsafe_code)]

pub mod fallback;

pub use fallback::{Shared, REDIS_TIMEOUT, RETRY_EVERY};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const MAX_LINE: usize = 512;
const MAX_BULK: usize = 4096;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("server error: {0}")]
    Server(String),
    #[error("malformed reply: {0}")]
    Protocol(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
}

/// One connection to a Redis server.
#[derive(Debug)]
pub struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `address` (host:port) with `timeout` for the connect and for every
    /// later read and write.
    pub fn open(address: &str, timeout: Duration) -> Result<Connection, RespError> {
        let addr = address
            .to_socket_addrs()
            .map_err(|_| RespError::Resolve(address.to_string()))?
            .next()
            .ok_or_else(|| RespError::Resolve(address.to_string()))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Connection {
            writer: stream,
            reader,
        })
    }

    /// Sends `commands` in one write and reads one reply per command.
    pub fn pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Reply>, RespError> {
        let mut out = Vec::new();
        for c in commands {
            encode(&mut out, c);
        }
        self.writer.write_all(&out)?;
        commands
            .iter()
            .map(|_| read_reply(&mut self.reader))
            .collect()
    }
}

/// Appends one command as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[String]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn read_line<R: BufRead>(r: &mut R) -> Result<String, RespError> {
    let mut line = Vec::new();
    r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(if line.is_empty() {
            RespError::Io(std::io::ErrorKind::UnexpectedEof.into())
        } else {
            RespError::Protocol("reply line too long or unterminated".into())
        });
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| RespError::Protocol("reply line is not UTF-8".into()))
}

/// Reads one reply.
pub fn read_reply<R: BufRead>(r: &mut R) -> Result<Reply, RespError> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Err(RespError::Server(rest.to_string())),
        ":" => rest
            .parse()
            .map(Reply::Integer)
            .map_err(|_| RespError::Protocol(format!("bad integer {rest:?}"))),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| RespError::Protocol(format!("bad bulk length {rest:?}")))?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_BULK {
                return Err(RespError::Protocol(format!("bulk of {len} bytes")));
            }
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf)?;
            if !buf.ends_with(b"\r\n") {
                return Err(RespError::Protocol("bulk not terminated".into()));
            }
            buf.truncate(len);
            Ok(Reply::Bulk(Some(buf)))
        }
        _ => Err(RespError::Protocol(format!("unexpected reply {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<Reply, RespError> {
        read_reply(&mut BufReader::new(bytes))
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        let mut out = Vec::new();
        encode(&mut out, &["INCR".into(), "k:1".into()]);
        assert_eq!(out, b"*2\r\n$4\r\nINCR\r\n$3\r\nk:1\r\n");
    }

    #[test]
    fn reads_each_reply_kind() {
        assert_eq!(parse(b":42\r\n").unwrap(), Reply::Integer(42));
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"$2\r\n17\r\n").unwrap(),
            Reply::Bulk(Some(b"17".to_vec()))
        );
        assert!(matches!(parse(b"-ERR wrong\r\n"), Err(RespError::Server(m)) if m == "ERR wrong"));
    }

    #[test]
    fn refuses_oversized_and_malformed_replies() {
        assert!(parse(b"$99999999\r\n").is_err());
        assert!(parse(format!(":{}\r\n", "1".repeat(600)).as_bytes()).is_err());
        assert!(parse(b"*1\r\n:1\r\n").is_err());
        assert!(parse(b":12").is_err());
        assert!(parse(b"$2\r\n17xx").is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }
    }
}
