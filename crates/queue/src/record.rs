//! The record layer of the queue file format (docs/queue-format.md): record type bytes,
//! the LEB128 length varint, size limits, and encoding one record.

/// Magic and version: the payload of the first record, always.
pub(crate) const MAGIC: &[u8] = b"ROSTQ1";

/// Record types.
pub(crate) const REC_VERSION: u8 = b'V';
pub(crate) const REC_TIME: u8 = b'T';
pub(crate) const REC_SENDER: u8 = b'S';
pub(crate) const REC_ATTR: u8 = b'A';
pub(crate) const REC_RCPT: u8 = b'R';
pub(crate) const REC_DONE: u8 = b'D';
pub(crate) const REC_MESSAGE: u8 = b'M';
pub(crate) const REC_CONTENT: u8 = b'N';
pub(crate) const REC_END: u8 = b'E';

/// Largest payload of any record. Bounds what a reader allocates for one record.
pub(crate) const MAX_RECORD: u64 = 64 * 1024 * 1024;
/// Largest payload of one content (`N`) record.
pub(crate) const MAX_CONTENT_RECORD: usize = 64 * 1024;
/// A length never takes more than 5 varint bytes (enough for 35 bits; 64 MiB needs 27).
pub(crate) const MAX_VARINT_BYTES: usize = 5;

/// Appends `value` as an unsigned LEB128 varint (minimal encoding).
pub(crate) fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Outcome of feeding one byte to a [`VarintDecoder`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VarintStep {
    /// More bytes needed.
    More,
    /// The length is complete.
    Done(u64),
}

/// Decodes a varint one byte at a time, enforcing the 5-byte and 64 MiB limits without
/// ever overflowing a shift.
#[derive(Debug, Default)]
pub(crate) struct VarintDecoder {
    value: u64,
    count: usize,
}

impl VarintDecoder {
    /// Feeds one byte; an error string says why the length is invalid.
    pub(crate) fn push(&mut self, byte: u8) -> Result<VarintStep, String> {
        if self.count >= MAX_VARINT_BYTES {
            return Err(format!(
                "record length longer than {MAX_VARINT_BYTES} bytes"
            ));
        }
        // count < 5, so the shift is at most 28 and the value fits easily in u64.
        self.value |= u64::from(byte & 0x7f) << (7 * self.count);
        self.count += 1;
        if self.value > MAX_RECORD {
            return Err(format!("record length {} exceeds {MAX_RECORD}", self.value));
        }
        if byte & 0x80 == 0 {
            Ok(VarintStep::Done(self.value))
        } else if self.count == MAX_VARINT_BYTES {
            Err(format!(
                "record length longer than {MAX_VARINT_BYTES} bytes"
            ))
        } else {
            Ok(VarintStep::More)
        }
    }
}

/// Appends one record (type, length, payload) to `out`.
pub(crate) fn encode_record(rtype: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(rtype);
    encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Option<u64>, String> {
        let mut d = VarintDecoder::default();
        for &b in bytes {
            if let VarintStep::Done(v) = d.push(b)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16383, 16384, 65536, MAX_RECORD] {
            let mut out = Vec::new();
            encode_varint(v, &mut out);
            assert!(out.len() <= MAX_VARINT_BYTES);
            assert_eq!(decode(&out), Ok(Some(v)));
        }
    }

    #[test]
    fn varint_known_encodings() {
        let mut out = Vec::new();
        encode_varint(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn varint_too_large_is_rejected() {
        let mut out = Vec::new();
        encode_varint(MAX_RECORD + 1, &mut out);
        assert!(decode(&out).is_err());
    }

    #[test]
    fn varint_too_long_is_rejected() {
        // Five continuation bytes of zero: never over the limit, but too long.
        assert!(decode(&[0x80, 0x80, 0x80, 0x80, 0x80]).is_err());
        assert!(decode(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err());
        // Non-minimal but within 5 bytes is accepted.
        assert_eq!(decode(&[0x81, 0x80, 0x00]), Ok(Some(1)));
    }

    #[test]
    fn varint_overshift_is_rejected() {
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(decode(&[0x80, 0x80, 0x80, 0x80, 0x10]).is_err());
    }
}
