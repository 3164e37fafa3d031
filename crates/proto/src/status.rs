//! The child-to-master status record written on the status pipe (fd 3 in every child).
//!
//! Fixed size and smaller than PIPE_BUF, so each write is atomic even with many children
//! sharing one pipe.

/// Bytes in one encoded [`ChildStatus`].
pub const STATUS_LEN: usize = 9;

/// Whether a child is busy with a client or waiting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// The child accepted a connection and is serving it.
    Taken,
    /// The child is waiting for a new connection.
    Avail,
}

/// One status report: which child, which master generation, busy or idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildStatus {
    pub pid: i32,
    pub generation: u32,
    pub kind: StatusKind,
}

impl ChildStatus {
    /// Encodes as pid (i32 LE), generation (u32 LE), kind (b'T' or b'A').
    pub fn encode(&self) -> [u8; STATUS_LEN] {
        let mut out = [0u8; STATUS_LEN];
        out[0..4].copy_from_slice(&self.pid.to_le_bytes());
        out[4..8].copy_from_slice(&self.generation.to_le_bytes());
        out[8] = match self.kind {
            StatusKind::Taken => b'T',
            StatusKind::Avail => b'A',
        };
        out
    }

    /// Decodes a record; `None` for an unknown kind byte.
    pub fn decode(buf: &[u8; STATUS_LEN]) -> Option<Self> {
        let pid = i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let generation = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let kind = match buf[8] {
            b'T' => StatusKind::Taken,
            b'A' => StatusKind::Avail,
            _ => return None,
        };
        Some(ChildStatus {
            pid,
            generation,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = ChildStatus {
            pid: 4242,
            generation: 7,
            kind: StatusKind::Taken,
        };
        assert_eq!(ChildStatus::decode(&s.encode()), Some(s));
    }

    #[test]
    fn bad_kind() {
        let mut b = ChildStatus {
            pid: 1,
            generation: 1,
            kind: StatusKind::Avail,
        }
        .encode();
        b[8] = b'x';
        assert_eq!(ChildStatus::decode(&b), None);
    }
}
