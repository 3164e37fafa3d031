//! The `.rdb` indexed table file that rostmap builds next to a source file, and its
//! reader (binary search over a sorted offset index). The layout is documented in the
//! crate documentation; every field is checked on open, so a damaged file is an error,
//! never a panic or a wrong answer.

use crate::error::MapError;
use crate::source::Entry;
use std::io::Write;
use std::path::{Path, PathBuf};

/// First 8 bytes of every .rdb file.
pub const MAGIC: &[u8; 8] = b"ROSTRDB\0";
/// Format version written and accepted.
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
/// Largest key or value accepted when building (keeps u32 lengths honest).
const MAX_FIELD: usize = 1 << 24;

/// The .rdb path for a source file: the source name with `.rdb` appended.
pub fn rdb_path(source: &Path) -> PathBuf {
    let mut s = source.as_os_str().to_os_string();
    s.push(".rdb");
    PathBuf::from(s)
}

/// Serialize entries (keys unique; they are sorted here) into the .rdb layout.
pub fn encode(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    sorted.dedup_by(|a, b| a.key == b.key);
    let count = u32::try_from(sorted.len()).map_err(|_| "too many entries".to_string())?;
    let mut data = Vec::new();
    let mut index = Vec::with_capacity(sorted.len() * 4);
    for e in &sorted {
        if e.key.len() > MAX_FIELD || e.value.len() > MAX_FIELD {
            return Err(format!("line {}: key or value too long", e.line));
        }
        let off = u32::try_from(data.len()).map_err(|_| "table too large".to_string())?;
        index.extend_from_slice(&off.to_le_bytes());
        data.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
        data.extend_from_slice(e.key.as_bytes());
        data.extend_from_slice(&(e.value.len() as u32).to_le_bytes());
        data.extend_from_slice(e.value.as_bytes());
    }
    let mut out = Vec::with_capacity(HEADER_LEN + index.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Write `entries` to `db` atomically: a temporary file in the same directory, fsync,
/// then rename over the old file, so a reader sees the old table or the new one.
pub fn write_atomic(db: &Path, entries: &[Entry]) -> Result<(), MapError> {
    write_atomic_like(db, entries, None)
}

/// [`write_atomic`], giving the new file the permission bits of `like` (the source
/// file) and, when run as root, its owner and group — before the rename, so a secret
/// table (sasl_passwd) is never readable by others even for a moment.
pub fn write_atomic_like(
    db: &Path,
    entries: &[Entry],
    like: Option<&Path>,
) -> Result<(), MapError> {
    use std::os::unix::fs::MetadataExt;
    let like_md = like.and_then(|p| std::fs::metadata(p).ok());
    let bytes = encode(entries).map_err(|reason| MapError::Corrupt {
        path: db.to_path_buf(),
        reason,
    })?;
    let mut tmp = db.as_os_str().to_os_string();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if like_md.is_some() { 0o600 } else { 0o644 })
            .open(&tmp)?;
        if let Some(md) = &like_md {
            if nix::unistd::geteuid().is_root() {
                std::os::unix::fs::fchown(&f, Some(md.uid()), Some(md.gid()))?;
            }
            f.set_permissions(md.permissions())?;
        }
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, db)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(MapError::io(db, e));
    }
    Ok(())
}

/// A validated .rdb image held in memory.
#[derive(Debug, Clone)]
pub struct Rdb {
    path: PathBuf,
    bytes: Vec<u8>,
    count: usize,
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Rdb {
    /// Validate an image: magic, version, index bounds, each entry's bounds, UTF-8,
    /// and strictly increasing keys (which binary search relies on).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Rdb, MapError> {
        let corrupt = |reason: &str| MapError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(corrupt("bad magic (not built by rostmap?)"));
        }
        let version = read_u32(&bytes, 8).ok_or_else(|| corrupt("short header"))?;
        if version != VERSION {
            return Err(corrupt(&format!("unsupported version {version}")));
        }
        let count = read_u32(&bytes, 12).ok_or_else(|| corrupt("short header"))? as usize;
        let data_start = count
            .checked_mul(4)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .filter(|&n| n <= bytes.len())
            .ok_or_else(|| corrupt("index runs past end of file"))?;
        let rdb = Rdb {
            path: path.to_path_buf(),
            bytes,
            count,
        };
        let mut prev: Option<&[u8]> = None;
        for i in 0..count {
            let (k, v) = rdb
                .raw_entry(i, data_start)
                .ok_or_else(|| corrupt("entry out of bounds"))?;
            if std::str::from_utf8(k).is_err() || std::str::from_utf8(v).is_err() {
                return Err(corrupt("entry is not UTF-8"));
            }
            if prev.is_some_and(|p| p >= k) {
                return Err(corrupt("keys not sorted"));
            }
            prev = Some(k);
        }
        Ok(rdb)
    }

    /// Read and validate a file.
    pub fn open(path: &Path) -> Result<Rdb, MapError> {
        let bytes = std::fs::read(path).map_err(|e| MapError::io(path, e))?;
        Rdb::from_bytes(path, bytes)
    }

    fn data_start(&self) -> usize {
        HEADER_LEN + self.count * 4
    }

    fn raw_entry(&self, i: usize, data_start: usize) -> Option<(&[u8], &[u8])> {
        let off = read_u32(&self.bytes, HEADER_LEN + i * 4)? as usize;
        let at = data_start.checked_add(off)?;
        let klen = read_u32(&self.bytes, at)? as usize;
        let kstart = at + 4;
        let key = self.bytes.get(kstart..kstart.checked_add(klen)?)?;
        let vat = kstart + klen;
        let vlen = read_u32(&self.bytes, vat)? as usize;
        let vstart = vat + 4;
        let value = self.bytes.get(vstart..vstart.checked_add(vlen)?)?;
        Some((key, value))
    }

    fn entry_str(&self, i: usize) -> Option<(&str, &str)> {
        let (k, v) = self.raw_entry(i, self.data_start())?;
        Some((std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Binary search for an exact key (already case-folded by the caller).
    pub fn get(&self, key: &str) -> Result<Option<String>, MapError> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, v) = self.entry_str(mid).ok_or_else(|| MapError::Corrupt {
                path: self.path.clone(),
                reason: format!("entry {mid} unreadable"),
            })?;
            match k.as_bytes().cmp(key.as_bytes()) {
                std::cmp::Ordering::Equal => return Ok(Some(v.to_string())),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// All entries in key order (for `rostmap -s`).
    pub fn entries(&self) -> Vec<(String, String)> {
        (0..self.count)
            .filter_map(|i| self.entry_str(i))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn e(key: &str, value: &str) -> Entry {
        Entry {
            line: 1,
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn round_trip_many_keys() {
        let entries: Vec<Entry> = (0..5000)
            .rev()
            .map(|i| e(&format!("key{i}@example.com"), &format!("value {i}")))
            .collect();
        let bytes = encode(&entries).unwrap();
        let rdb = Rdb::from_bytes(Path::new("t.rdb"), bytes).unwrap();
        assert_eq!(rdb.len(), 5000);
        for i in (0..5000).step_by(7) {
            let got = rdb.get(&format!("key{i}@example.com")).unwrap();
            assert_eq!(got.as_deref(), Some(format!("value {i}").as_str()));
        }
        assert_eq!(rdb.get("key5000@example.com").unwrap(), None);
        assert_eq!(rdb.get("").unwrap(), None);
        assert_eq!(rdb.get("zzz").unwrap(), None);
        let all = rdb.entries();
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn empty_table() {
        let rdb = Rdb::from_bytes(Path::new("t"), encode(&[]).unwrap()).unwrap();
        assert!(rdb.is_empty());
        assert_eq!(rdb.get("x").unwrap(), None);
    }

    #[test]
    fn damage_is_detected() {
        let good = encode(&[e("a", "1"), e("b", "2")]).unwrap();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            Rdb::from_bytes(Path::new("t"), bad),
            Err(MapError::Corrupt { .. })
        ));
        let truncated = good[..good.len() - 1].to_vec();
        assert!(Rdb::from_bytes(Path::new("t"), truncated).is_err());
        let mut count = good.clone();
        count[12] = 0xff;
        assert!(Rdb::from_bytes(Path::new("t"), count).is_err());
    }

    proptest! {
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(rdb) = Rdb::from_bytes(Path::new("t"), bytes) {
                let _ = rdb.get("a");
                let _ = rdb.entries();
            }
        }

        #[test]
        fn reader_never_panics_after_header(tail in proptest::collection::vec(any::<u8>(), 0..512), count in 0u32..64) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&VERSION.to_le_bytes());
            bytes.extend_from_slice(&count.to_le_bytes());
            bytes.extend_from_slice(&tail);
            if let Ok(rdb) = Rdb::from_bytes(Path::new("t"), bytes) {
                let _ = rdb.get("a");
            }
        }

        #[test]
        fn encode_then_get(map in proptest::collection::btree_map("[a-z0-9@.]{0,12}", "[ -~]{0,20}", 0..50)) {
            let entries: Vec<Entry> = map.iter().map(|(k, v)| e(k, v)).collect();
            let rdb = Rdb::from_bytes(Path::new("t"), encode(&entries).unwrap()).unwrap();
            for (k, v) in &map {
                prop_assert_eq!(rdb.get(k).unwrap(), Some(v.clone()));
            }
        }

        #[test]
        fn source_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = crate::source::parse_postmap(&bytes, true);
            let _ = crate::source::parse_aliases(&bytes, true);
        }
    }
}
