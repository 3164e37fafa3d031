//! Reading the message from standard input: CRLF becomes LF, a last line without a
//! newline gets one, a leading mbox `From ` line is dropped (as Postfix's sendmail
//! does), and without `-i` a line holding a single `.` ends the message. The size is
//! bounded by message_size_limit while reading, so a huge input never sits in memory.

use std::io::{self, BufRead, Read};

/// Why the message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("message file too big")]
    TooBig,
    #[error("error reading message: {0}")]
    Io(#[from] io::Error),
}

/// Reads the whole message. `limit` is message_size_limit in bytes (0 = no limit).
pub fn read_message<R: BufRead>(
    mut r: R,
    ignore_dots: bool,
    limit: u64,
) -> Result<Vec<u8>, InputError> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        // Never read more than the rest of the allowance plus a CRLF into one line,
        // so a newline-free flood cannot grow memory past the limit.
        let budget = if limit == 0 {
            u64::MAX
        } else {
            limit.saturating_sub(out.len() as u64) + 2
        };
        let n = (&mut r).take(budget).read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if first {
            first = false;
            if line.starts_with(b"From ") {
                continue;
            }
        }
        if !ignore_dots && line == b"." {
            break;
        }
        out.extend_from_slice(&line);
        out.push(b'\n');
        if limit != 0 && out.len() as u64 > limit {
            return Err(InputError::TooBig);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], ignore_dots: bool, limit: u64) -> Result<Vec<u8>, InputError> {
        read_message(input, ignore_dots, limit)
    }

    #[test]
    fn crlf_normalized_and_last_line_terminated() {
        let got = read(b"Subject: x\r\n\r\nbody\r\nlast", false, 0).unwrap();
        assert_eq!(got, b"Subject: x\n\nbody\nlast\n");
    }

    #[test]
    fn bare_cr_is_kept() {
        assert_eq!(read(b"a\rb\n", false, 0).unwrap(), b"a\rb\n");
    }

    #[test]
    fn dot_ends_input_without_i() {
        let got = read(b"a\n.\nafter\n", false, 0).unwrap();
        assert_eq!(got, b"a\n");
        let got = read(b"a\r\n.\r\nafter\r\n", false, 0).unwrap();
        assert_eq!(got, b"a\n");
        // Only a lone dot: ".." and ". " are content, and never unstuffed.
        let got = read(b"..\n. \n", false, 0).unwrap();
        assert_eq!(got, b"..\n. \n");
    }

    #[test]
    fn dot_is_content_with_i() {
        let got = read(b"a\n.\nafter\n", true, 0).unwrap();
        assert_eq!(got, b"a\n.\nafter\n");
    }

    #[test]
    fn leading_from_line_dropped() {
        let got = read(
            b"From joe Mon Nov 23 09:00:00 2026\nSubject: x\n\nFrom here\n",
            false,
            0,
        )
        .unwrap();
        assert_eq!(got, b"Subject: x\n\nFrom here\n");
    }

    #[test]
    fn size_limit() {
        assert_eq!(read(b"12345\n", false, 6).unwrap(), b"12345\n");
        assert!(matches!(
            read(b"123456\n", false, 6),
            Err(InputError::TooBig)
        ));
        // A long line without newline is cut off at the budget, not read whole.
        let big = vec![b'x'; 100_000];
        assert!(matches!(read(&big, false, 10), Err(InputError::TooBig)));
        // The limit counts stored bytes: CRLF input that fits as LF is fine.
        assert_eq!(read(b"1234\r\n", false, 5).unwrap(), b"1234\n");
    }
}
