//! The milter wire format: every packet is a 4-byte big-endian length, a one-byte
//! command (MTA to milter) or reply code (milter to MTA), then length-1 bytes of data,
//! strings NUL-terminated. [`encode`] builds a packet, [`Response::decode`] parses a
//! reply's data, [`read_packet`] reads one packet from a stream with a size cap so a
//! broken or hostile milter cannot make us allocate without bound.

use std::io::Read;

/// Largest packet accepted from a milter. libmilter sends body replacements in pieces
/// of at most 64 KiB; headers and reply texts are far smaller. 1 MiB leaves room.
pub const MAX_PACKET: usize = 1024 * 1024;

/// Largest body chunk sent to a milter (libmilter's MILTER_CHUNK_SIZE).
pub const BODY_CHUNK: usize = 65535;

/// Command codes (MTA to milter).
pub mod cmd {
    pub const ABORT: u8 = b'A';
    pub const BODY: u8 = b'B';
    pub const CONNECT: u8 = b'C';
    pub const MACRO: u8 = b'D';
    pub const BODYEOB: u8 = b'E';
    pub const HELO: u8 = b'H';
    pub const HEADER: u8 = b'L';
    pub const MAIL: u8 = b'M';
    pub const EOH: u8 = b'N';
    pub const OPTNEG: u8 = b'O';
    pub const QUIT: u8 = b'Q';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
    /// A command smtpd does not know (the whole line).
    pub const UNKNOWN: u8 = b'U';
}

/// Modification actions (SMFIF_*) the MTA allows.
pub mod act {
    pub const ADDHDRS: u32 = 0x01;
    pub const CHGBODY: u32 = 0x02;
    pub const ADDRCPT: u32 = 0x04;
    pub const DELRCPT: u32 = 0x08;
    pub const CHGHDRS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    pub const CHGFROM: u32 = 0x40;
    pub const ADDRCPT_PAR: u32 = 0x80;
    /// Everything this client applies.
    pub const ALL: u32 =
        ADDHDRS | CHGBODY | ADDRCPT | DELRCPT | CHGHDRS | QUARANTINE | CHGFROM | ADDRCPT_PAR;
    /// SMFIF_SETSYMLIST: the milter may name the macros it wants per stage in its
    /// negotiation reply (not a modification).
    pub const SETSYMLIST: u32 = 0x100;
    /// What the negotiation offers, as Postfix's milter8 does.
    pub const OFFERED: u32 = ALL | SETSYMLIST;
}

/// Macro stages (SMFIM_*) of a SETSYMLIST list.
pub mod stage {
    pub const CONNECT: u32 = 0;
    pub const HELO: u32 = 1;
    pub const ENVFROM: u32 = 2;
    pub const ENVRCPT: u32 = 3;
    pub const DATA: u32 = 4;
    pub const EOM: u32 = 5;
    pub const EOH: u32 = 6;
}

/// Protocol step flags (SMFIP_*): which events the milter does not want (NO*) and to
/// which it will not reply (NR_*).
pub mod proto {
    pub const NOCONNECT: u32 = 0x1;
    pub const NOHELO: u32 = 0x2;
    pub const NOMAIL: u32 = 0x4;
    pub const NORCPT: u32 = 0x8;
    pub const NOBODY: u32 = 0x10;
    pub const NOHDRS: u32 = 0x20;
    pub const NOEOH: u32 = 0x40;
    pub const NR_HDR: u32 = 0x80;
    pub const NOUNKNOWN: u32 = 0x100;
    pub const NODATA: u32 = 0x200;
    pub const SKIP: u32 = 0x400;
    pub const RCPT_REJ: u32 = 0x800;
    pub const NR_CONN: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x10000;
    pub const NR_UNKN: u32 = 0x20000;
    pub const NR_EOH: u32 = 0x40000;
    pub const NR_BODY: u32 = 0x80000;
    /// Header values sent and taken with their leading white space as is.
    pub const HDR_LEADSPC: u32 = 0x100000;
    /// Everything this client understands; RCPT_REJ and HDR_LEADSPC take effect only
    /// for a milter that asks for them.
    pub const ALL: u32 = NOCONNECT
        | NOHELO
        | NOMAIL
        | NORCPT
        | NOBODY
        | NOHDRS
        | NOEOH
        | NR_HDR
        | NOUNKNOWN
        | NODATA
        | SKIP
        | NR_CONN
        | NR_HELO
        | NR_MAIL
        | NR_RCPT
        | NR_DATA
        | NR_UNKN
        | NR_EOH
        | NR_BODY
        | RCPT_REJ
        | HDR_LEADSPC;
}

/// Why a packet could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("milter packet of {0} bytes exceeds the limit")]
    TooLong(usize),
    #[error("empty milter packet")]
    Empty,
    #[error("malformed milter reply '{0}'")]
    Malformed(char),
    #[error("unknown milter reply code '{0}'")]
    UnknownCode(char),
    #[error("connection closed by the milter")]
    Closed,
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An I/O error of a read, named as a milter log line should name it.
fn read_error(e: std::io::Error) -> CodecError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof => CodecError::Closed,
        ErrorKind::WouldBlock | ErrorKind::TimedOut => CodecError::Timeout,
        _ => CodecError::Io(e),
    }
}

/// One packet: command byte, then data.
pub fn encode(command: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    let len = u32::try_from(data.len() + 1).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(command);
    out.extend_from_slice(data);
    out
}

/// Appends `s` NUL-terminated (an embedded NUL would end the string early on the other
/// side, so it is dropped).
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|b| *b != 0));
    out.push(0);
}

/// Reads one packet: (code, data). At most [`MAX_PACKET`] bytes.
pub fn read_packet<R: Read>(input: &mut R) -> Result<(u8, Vec<u8>), CodecError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(read_error)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(CodecError::Empty);
    }
    if len > MAX_PACKET {
        return Err(CodecError::TooLong(len));
    }
    let mut buf = vec![0u8; len];
    input.read_exact(&mut buf).map_err(read_error)?;
    let code = buf[0];
    buf.remove(0);
    Ok((code, buf))
}

/// A milter's reply, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Option negotiation: version, actions, protocol steps, and the macro lists the
    /// milter asks for (SETSYMLIST: stage, space-separated names).
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
        symlists: Vec<(u32, String)>,
    },
    Accept,
    Continue,
    Reject,
    Tempfail,
    Discard,
    /// `SMFIR_REPLYCODE`: a full SMTP reply, "550 5.7.1 text".
    ReplyCode(String),
    Skip,
    Progress,
    /// Modifications, only at end of message.
    AddHeader {
        name: String,
        value: String,
    },
    InsHeader {
        index: u32,
        name: String,
        value: String,
    },
    ChgHeader {
        index: u32,
        name: String,
        value: String,
    },
    AddRcpt {
        rcpt: String,
        args: Option<String>,
    },
    DelRcpt(String),
    ChgFrom {
        from: String,
        args: Option<String>,
    },
    ReplBody(Vec<u8>),
    Quarantine(String),
    /// SMFIR_SHUTDOWN / SMFIR_CONN_FAIL: the milter gives up the session.
    Shutdown,
}

impl Response {
    /// The bytes a reply carries, to bound what a milter's edits may make us hold.
    pub fn data_len(&self) -> usize {
        match self {
            Response::AddHeader { name, value }
            | Response::InsHeader { name, value, .. }
            | Response::ChgHeader { name, value, .. } => name.len() + value.len(),
            Response::AddRcpt { rcpt: a, args } | Response::ChgFrom { from: a, args } => {
                a.len() + args.as_ref().map_or(0, String::len)
            }
            Response::DelRcpt(s) | Response::Quarantine(s) | Response::ReplyCode(s) => s.len(),
            Response::ReplBody(b) => b.len(),
            _ => 0,
        }
    }
}

/// Splits NUL-terminated strings; the last may lack its NUL.
fn strings(data: &[u8]) -> Vec<String> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    data.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// The SETSYMLIST part of a negotiation reply: (stage, NUL-terminated names)*.
fn symlists(mut data: &[u8]) -> Option<Vec<(u32, String)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let stage = be32(data, 0)?;
        let rest = &data[4..];
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        out.push((stage, String::from_utf8_lossy(&rest[..end]).into_owned()));
        data = rest.get(end + 1..).unwrap_or(&[]);
    }
    Some(out)
}

impl Response {
    /// Decodes a reply packet's code and data.
    pub fn decode(code: u8, data: &[u8]) -> Result<Response, CodecError> {
        let bad = || CodecError::Malformed(code as char);
        let two = |data: &[u8]| -> Result<(String, String), CodecError> {
            let mut s = strings(data).into_iter();
            match (s.next(), s.next()) {
                (Some(a), Some(b)) if !a.is_empty() => Ok((a, b)),
                _ => Err(bad()),
            }
        };
        let one = |data: &[u8]| -> Result<String, CodecError> {
            strings(data).into_iter().next().ok_or_else(bad)
        };
        Ok(match code {
            b'O' => Response::OptNeg {
                version: be32(data, 0).ok_or_else(bad)?,
                actions: be32(data, 4).ok_or_else(bad)?,
                protocol: be32(data, 8).ok_or_else(bad)?,
                symlists: symlists(&data[12..]).ok_or_else(bad)?,
            },
            b'a' => Response::Accept,
            b'c' => Response::Continue,
            b'r' => Response::Reject,
            b't' => Response::Tempfail,
            b'd' => Response::Discard,
            b's' => Response::Skip,
            b'p' => Response::Progress,
            b'4' | b'f' => Response::Shutdown,
            b'y' => {
                let text = one(data)?;
                let valid = text.len() >= 3
                    && text.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && matches!(text.as_bytes()[0], b'4' | b'5');
                if !valid {
                    return Err(bad());
                }
                Response::ReplyCode(text)
            }
            b'h' => {
                let (name, value) = two(data)?;
                Response::AddHeader { name, value }
            }
            b'i' | b'm' => {
                let index = be32(data, 0).ok_or_else(bad)?;
                let (name, value) = two(&data[4..])?;
                if code == b'i' {
                    Response::InsHeader { index, name, value }
                } else {
                    Response::ChgHeader { index, name, value }
                }
            }
            b'+' | b'2' => {
                let mut s = strings(data).into_iter();
                let rcpt = s.next().filter(|r| !r.is_empty()).ok_or_else(bad)?;
                let args = s.next().filter(|a| !a.is_empty());
                Response::AddRcpt { rcpt, args }
            }
            b'-' => Response::DelRcpt(one(data)?),
            b'e' => {
                let mut s = strings(data).into_iter();
                let from = s.next().ok_or_else(bad)?;
                let args = s.next().filter(|a| !a.is_empty());
                Response::ChgFrom { from, args }
            }
            b'b' => Response::ReplBody(data.to_vec()),
            b'q' => Response::Quarantine(one(data)?),
            other => return Err(CodecError::UnknownCode(other as char)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_length_command_data() {
        assert_eq!(encode(cmd::HELO, b"x\0"), [0, 0, 0, 3, b'H', b'x', 0]);
        let mut data = Vec::new();
        put_str(&mut data, "a\0b");
        assert_eq!(data, b"ab\0");
    }

    #[test]
    fn reads_packets_and_caps_their_size() {
        let mut input: &[u8] = &[0, 0, 0, 1, b'c', 0, 0, 0, 2, b'h'];
        assert_eq!(read_packet(&mut input).unwrap(), (b'c', vec![]));
        assert!(matches!(read_packet(&mut input), Err(CodecError::Closed)));
        let huge = ((MAX_PACKET + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_packet(&mut &huge[..]),
            Err(CodecError::TooLong(_))
        ));
        assert!(matches!(
            read_packet(&mut &[0u8, 0, 0, 0][..]),
            Err(CodecError::Empty)
        ));
    }

    #[test]
    fn decodes_replies() {
        let mut optneg = Vec::new();
        for v in [6u32, 0x1ff, 0x10] {
            optneg.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            Response::decode(b'O', &optneg).unwrap(),
            Response::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: 0x10,
                symlists: vec![]
            }
        );
        optneg.extend_from_slice(b"\0\0\0\0{client_port} j\0\0\0\0\x05i");
        assert_eq!(
            Response::decode(b'O', &optneg).unwrap(),
            Response::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: 0x10,
                symlists: vec![(0, "{client_port} j".into()), (5, "i".into())]
            }
        );
        // A stage number cut short is malformed.
        assert!(Response::decode(b'O', &optneg[..optneg.len() - 3]).is_err());
        let cut = [&optneg[..12], b"\0\0"].concat();
        assert!(Response::decode(b'O', &cut).is_err());
        assert_eq!(
            Response::decode(b'y', b"550 5.7.1 go away\0").unwrap(),
            Response::ReplyCode("550 5.7.1 go away".into())
        );
        assert!(Response::decode(b'y', b"250 fine\0").is_err());
        assert_eq!(
            Response::decode(b'h', b"X-A\0 v\0").unwrap(),
            Response::AddHeader {
                name: "X-A".into(),
                value: " v".into()
            }
        );
        assert_eq!(
            Response::decode(b'm', b"\0\0\0\x02Subject\0\0").unwrap(),
            Response::ChgHeader {
                index: 2,
                name: "Subject".into(),
                value: String::new()
            }
        );
        assert_eq!(
            Response::decode(b'2', b"<a@b>\0NOTIFY=NEVER\0").unwrap(),
            Response::AddRcpt {
                rcpt: "<a@b>".into(),
                args: Some("NOTIFY=NEVER".into())
            }
        );
        assert_eq!(
            Response::decode(b'q', b"spam\0").unwrap(),
            Response::Quarantine("spam".into())
        );
        assert!(Response::decode(b'i', b"\0\0").is_err());
        assert!(matches!(
            Response::decode(b'Z', b""),
            Err(CodecError::UnknownCode('Z'))
        ));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(code in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Response::decode(code, &data);
        }

        #[test]
        fn reader_never_panics_or_overreads(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut slice = &input[..];
            if let Ok((_, data)) = read_packet(&mut slice) {
                prop_assert!(data.len() < input.len());
            }
        }
    }
}
