//! The wire form of Postfix's policy delegation protocol (SMTPD_POLICY_README):
//! a request is `name=value` lines ended by an empty line, and so is the answer, of
//! which only `action=` matters. Reading is bounded in line length and line count so
//! a policy server that sends garbage cannot make smtpd buffer without end.

use std::io::BufRead;

/// The longest answer line we accept (Postfix's replies are one SMTP line, < 512).
pub const MAX_LINE: usize = 4096;
/// The most attribute lines in one answer.
pub const MAX_LINES: usize = 64;

/// Why an answer is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed before the end of the answer")]
    Eof,
    #[error("answer line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("more than {MAX_LINES} attributes in the answer")]
    TooManyLines,
    #[error("malformed answer line (no '=')")]
    Malformed,
    #[error("missing policy service response attribute: action")]
    NoAction,
}

/// Encodes one request. Values lose CR and LF, which would end the attribute
/// early and let a client (e.g. through its HELO name) inject attributes.
pub fn encode_request(attrs: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    for (name, value) in attrs {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend(value.bytes().filter(|b| *b != b'\n' && *b != b'\r'));
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Reads one answer up to its empty line and returns the `action` value.
pub fn read_action(r: &mut impl BufRead) -> Result<String, CodecError> {
    let mut action = None;
    let mut lines = 0usize;
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return action.ok_or(CodecError::NoAction);
        }
        lines += 1;
        if lines > MAX_LINES {
            return Err(CodecError::TooManyLines);
        }
        let (name, value) = line.split_once('=').ok_or(CodecError::Malformed)?;
        // The first action wins, as in Postfix's attribute reader.
        if name == "action" && action.is_none() {
            action = Some(value.to_string());
        }
    }
}

/// One line without its LF (and a CR before it), at most [`MAX_LINE`] bytes.
fn read_line(r: &mut impl BufRead) -> Result<String, CodecError> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Err(CodecError::Eof);
        }
        let (take, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > MAX_LINE + 2 {
            return Err(CodecError::LineTooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn request_is_lines_and_an_empty_line() {
        let req = encode_request(&[
            ("request", "smtpd_access_policy".into()),
            ("helo_name", "evil\r\naction=OK".into()),
        ]);
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "request=smtpd_access_policy\nhelo_name=evilaction=OK\n\n"
        );
    }

    #[test]
    fn answer_action_and_errors() {
        let mut c = Cursor::new(b"foo=bar\naction=DEFER_IF_PERMIT Greylisted, see x\n\n".to_vec());
        assert_eq!(
            read_action(&mut c).unwrap(),
            "DEFER_IF_PERMIT Greylisted, see x"
        );
        let mut c = Cursor::new(b"action=OK\r\n\r\n".to_vec());
        assert_eq!(read_action(&mut c).unwrap(), "OK");
        let mut c = Cursor::new(b"action=dunno\n".to_vec());
        assert!(matches!(read_action(&mut c), Err(CodecError::Eof)));
        let mut c = Cursor::new(b"x=y\n\n".to_vec());
        assert!(matches!(read_action(&mut c), Err(CodecError::NoAction)));
        let mut c = Cursor::new(b"garbage\n\n".to_vec());
        assert!(matches!(read_action(&mut c), Err(CodecError::Malformed)));
        let long = vec![b'a'; MAX_LINE * 3];
        let mut c = Cursor::new(long);
        assert!(matches!(read_action(&mut c), Err(CodecError::LineTooLong)));
        let many = "a=b\n".repeat(MAX_LINES + 1) + "\n";
        let mut c = Cursor::new(many.into_bytes());
        assert!(matches!(read_action(&mut c), Err(CodecError::TooManyLines)));
    }
}
