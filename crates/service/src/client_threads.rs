//! A thread per client stream, for the services of the multi shape that serve unix
//! clients (anvil, verify, proxymap, mtasts): at most `max` streams at once; a client
//! beyond that, a TCP client, or a thread that cannot start is closed at once (its
//! caller sees a temporary failure).

use crate::Connection;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The bound and the count of streams being served; clones share the count.
#[derive(Debug, Clone)]
pub struct ClientThreads {
    live: Arc<AtomicUsize>,
    max: usize,
    program: &'static str,
}

impl ClientThreads {
    /// `program` names the service in warnings.
    pub fn new(program: &'static str, max: usize) -> ClientThreads {
        ClientThreads {
            live: Arc::new(AtomicUsize::new(0)),
            max,
            program,
        }
    }

    /// Streams being served now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Serves `conn` with `serve` on a thread of its own, or closes it (see the
    /// module comment). Returns at once: it runs on the skeleton's acceptor thread.
    pub fn start(&self, conn: Connection, serve: impl FnOnce(UnixStream) + Send + 'static) {
        let Connection::Unix(stream) = conn else {
            log::warn!("ignoring a TCP client: {} is a unix service", self.program);
            return;
        };
        if self.live() >= self.max {
            log::warn!("too many clients ({}); closing a new one", self.max);
            return;
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        let live = self.live.clone();
        let spawned = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                serve(stream);
                live.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            self.live.fetch_sub(1, Ordering::Relaxed);
            log::warn!("cannot start a client thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn streams_beyond_the_bound_are_closed_and_finished_ones_counted_down() {
        let threads = ClientThreads::new("test", 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (a, _a_peer) = UnixStream::pair().unwrap();
        threads.start(Connection::Unix(a), move |_s| {
            let _ = release_rx.recv();
        });
        assert_eq!(threads.live(), 1);
        let (b, mut b_peer) = UnixStream::pair().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let counted = served.clone();
        threads.start(Connection::Unix(b), move |_s| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        // The second stream was dropped unserved: its peer reads end of file.
        use std::io::Read;
        b_peer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(b_peer.read(&mut [0u8; 1]).unwrap(), 0);
        assert_eq!(served.load(Ordering::Relaxed), 0);
        release_tx.send(()).unwrap();
        for _ in 0..500 {
            if threads.live() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the finished stream was not counted down");
    }
}
