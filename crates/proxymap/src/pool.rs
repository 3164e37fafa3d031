//! A bounded pool of one table's open instances. Each instance of a database table
//! holds one connection and answers one lookup at a time, so the pool's size is the
//! most connections proxymap makes to that database; a lookup that finds every
//! instance busy waits for one (at most [`WAIT`], then a temporary error).
//! Instances are opened on demand and kept: an idle connection is closed by the
//! table itself (idle_interval) and reopened on its next lookup.

use rostfix_maps::{open_map_for_write, open_map_with, Map, MapError, OpenFlags};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest wait for a free instance; below the clients' own timeout (120 s).
const WAIT: Duration = Duration::from_secs(60);

struct State {
    idle: Vec<Box<dyn Map>>,
    /// Instances open, idle or lent out.
    open: usize,
}

/// Instances of one `type:name` opened with one set of flags.
pub struct Pool {
    table: String,
    flags: OpenFlags,
    /// proxywrite's pools open their tables for writing.
    write: bool,
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
}

impl Pool {
    /// A pool of at most `size` (at least 1) instances of `table`, opened for
    /// writing when `write`; none open yet.
    pub fn new(table: &str, flags: OpenFlags, size: usize, write: bool) -> Pool {
        Pool {
            table: table.to_string(),
            flags,
            write,
            size: size.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// A pool of the one instance `map`, already open (proxywrite's tables, opened
    /// before confinement: no more can be opened afterwards).
    pub fn with_instance(table: &str, flags: OpenFlags, map: Box<dyn Map>) -> Pool {
        Pool {
            table: table.to_string(),
            flags,
            write: true,
            size: 1,
            state: Mutex::new(State {
                idle: vec![map],
                open: 1,
            }),
            freed: Condvar::new(),
        }
    }

    /// Look `key` up in a free instance.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        self.with(|map| map.lookup(key))
    }

    /// Run `op` on a free instance.
    pub fn with<R>(&self, op: impl FnOnce(&dyn Map) -> Result<R, MapError>) -> Result<R, MapError> {
        let map = self.take()?;
        let result = op(map.as_ref());
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.idle.push(map);
        drop(state);
        self.freed.notify_one();
        result
    }

    /// An idle instance, a newly opened one while fewer than `size` are open, or the
    /// next one given back.
    fn take(&self) -> Result<Box<dyn Map>, MapError> {
        let deadline = Instant::now() + WAIT;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(m) = state.idle.pop() {
                return Ok(m);
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                // Opened without the lock: opening a file table can take a while.
                let opened = if self.write {
                    open_map_for_write(&self.table, self.flags)
                } else {
                    open_map_with(&self.table, self.flags)
                };
                return opened.inspect_err(|_| {
                    let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.open -= 1;
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(MapError::Lookup {
                    table: self.table.clone(),
                    reason: format!("all {} connections busy for {}s", self.size, WAIT.as_secs()),
                });
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn instances_never_exceed_the_size() {
        let pool = Arc::new(Pool::new("inline:{a=b}", OpenFlags::default(), 2, false));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        assert_eq!(p.lookup("a").unwrap(), Some("b".into()));
                        assert!(p.state.lock().unwrap().open <= 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let state = pool.state.lock().unwrap();
        assert!(state.open <= 2 && state.open == state.idle.len());
    }

    #[test]
    fn a_failed_open_frees_its_place() {
        let pool = Pool::new("hash:/nonexistent/table", OpenFlags::default(), 1, false);
        assert!(pool.lookup("a").is_err());
        assert!(pool.lookup("a").is_err());
        assert_eq!(pool.state.lock().unwrap().open, 0);
    }
}
