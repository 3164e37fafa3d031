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
    /// administrator's new table is what should be in force. The one exception: when
    /// none of the files can be seen any more (a daemon that chrooted after opening
    /// its tables), the loaded contents stay in force.
    pub fn get(&self) -> Result<Arc<T>, MapError> {
        // A poisoned lock only means another lookup panicked; the state is still whole.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.checked.elapsed() >= CHECK_INTERVAL {
            st.checked = Instant::now();
            let now: Vec<Stamp> = self.files.iter().map(stamp).collect();
            // Every file gone from view while we hold a loaded copy: the process has
            // chrooted away from them (smtpd opens its tables before confinement), so
            // keep what was loaded rather than failing every lookup.
            let vanished = now.iter().all(Option::is_none) && st.stamps.iter().any(Option::is_some);
            if now != st.stamps && !vanished {
                let value = (self.load)()?;
                st.value = Arc::new(value);
                st.stamps = now;
            }
        }
        Ok(Arc::clone(&st.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_contents_when_every_file_vanishes() {
        let dir = std::env::temp_dir().join(format!("rostfix-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t");
        std::fs::write(&path, "one").unwrap();
        let p2 = path.clone();
        let w = Watched::new(
            vec![path.clone()],
            Box::new(move || {
                std::fs::read_to_string(&p2).map_err(|e| MapError::Io {
                    path: p2.clone(),
                    source: e,
                })
            }),
        )
        .unwrap();
        assert_eq!(*w.get().unwrap(), "one");
        // As after chroot: the file cannot be seen any more.
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(CHECK_INTERVAL + Duration::from_millis(50));
        assert_eq!(*w.get().unwrap(), "one");
        // A changed file is still re-read.
        std::fs::write(&path, "two").unwrap();
        std::thread::sleep(CHECK_INTERVAL + Duration::from_millis(50));
        assert_eq!(*w.get().unwrap(), "two");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
