//! Reload-on-change: a table's parsed contents together with the identity (mtime, size,
//! inode) of the files it came from. At most once per second a lookup re-checks those
//! files and re-reads the table when any changed, so an edited table is used without
//! restarting the daemon that holds it.

use crate::error::MapError;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are re-checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

type Stamp = Option<(SystemTime, u64, u64)>;
type Loader<T> = Box<dyn Fn() -> Result<T, MapError> + Send + Sync>;

fn stamp(path: &PathBuf) -> Stamp {
    let md = std::fs::metadata(path).ok()?;
    Some((md.modified().ok()?, md.len(), md.ino()))
}

struct State<T> {
    value: Arc<T>,
    stamps: Vec<Stamp>,
    checked: Instant,
}

/// A value loaded from files and re-loaded when they change.
pub struct Watched<T> {
    files: Vec<PathBuf>,
    load: Loader<T>,
    state: Mutex<State<T>>,
}

impl<T> Watched<T> {
    /// Load now (errors propagate: a table that cannot be opened is an open error).
    pub fn new(files: Vec<PathBuf>, load: Loader<T>) -> Result<Watched<T>, MapError> {
        let stamps = files.iter().map(stamp).collect();
        let value = Arc::new(load()?);
        Ok(Watched {
            files,
            load,
            state: Mutex::new(State {
                value,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The current value, re-loaded first if a file changed since the last check. A
    /// failed re-load is returned as an error (a temporary failure for the caller) and
    /// retried on the next check; the old contents are not silently kept, because the
    /// administrator's new table is what should be in force.
    pub fn get(&self) -> Result<Arc<T>, MapError> {
        // A poisoned lock only means another lookup panicked; the state is still whole.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.checked.elapsed() >= CHECK_INTERVAL {
            st.checked = Instant::now();
            let now: Vec<Stamp> = self.files.iter().map(stamp).collect();
            if now != st.stamps {
                let value = (self.load)()?;
                st.value = Arc::new(value);
                st.stamps = now;
            }
        }
        Ok(Arc::clone(&st.value))
    }
}
