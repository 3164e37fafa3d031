//! A throw-away queue_directory for unit tests (no tempfile dependency): a fresh
//! directory under the system temp dir with every queue subdirectory, removed on drop.

use crate::ALL_QUEUES;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static N: AtomicU64 = AtomicU64::new(0);

pub(crate) struct TempRoot(PathBuf);

impl TempRoot {
    pub(crate) fn new() -> TempRoot {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rostq-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        for q in ALL_QUEUES {
            std::fs::create_dir_all(path.join(q.as_str())).unwrap();
        }
        for d in ["defer", "bounce"] {
            std::fs::create_dir_all(path.join(d)).unwrap();
        }
        TempRoot(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
