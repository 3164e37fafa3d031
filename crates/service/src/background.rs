//! Acceptor threads for the shapes whose main thread runs the daemon's own loop
//! (multi_server, event_server): one thread per listener blocks in accept and hands
//! each client over, reporting TAKEN before and AVAIL after the hand-over.

use crate::daemon::StartError;
use crate::serve::Listener;
use crate::status::StatusPipe;
use crate::Connection;
use rostfix_proto::StatusKind;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

/// Starts one acceptor thread per listener. The threads never end on their own: the
/// process exits when the daemon's main loop returns.
pub(crate) fn spawn_acceptors(
    listeners: Vec<OwnedFd>,
    status: StatusPipe<'static>,
    on_client: Arc<dyn Fn(Connection) + Send + Sync>,
) -> Result<(), StartError> {
    let failed = |source| StartError::Thread {
        what: "acceptor",
        source,
    };
    for listener in crate::serve::listeners(listeners) {
        // The thread waits in accept; the flag is shared with master, which only polls.
        listener.set_blocking().map_err(failed)?;
        let on_client = Arc::clone(&on_client);
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(&listener, status, &*on_client))
            .map_err(failed)?;
    }
    Ok(())
}

fn accept_loop(listener: &Listener, status: StatusPipe<'_>, on_client: &dyn Fn(Connection)) {
    loop {
        match listener.accept() {
            Ok(conn) => {
                // Master gone is the main loop's to notice; a report it cannot read
                // changes nothing.
                let _ = status.report(StatusKind::Taken);
                on_client(conn);
                let _ = status.report(StatusKind::Avail);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::{ChildStatus, STATUS_LEN};
    use std::io::Read;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::mpsc;

    #[test]
    fn every_client_is_handed_over_between_taken_and_avail() {
        let path =
            std::env::temp_dir().join(format!("rostfix-service-bg-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        // The status pipe must outlive the acceptor thread, as fd 3 does in a daemon.
        let w: &'static OwnedFd = Box::leak(Box::new(w));
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        spawn_acceptors(
            vec![OwnedFd::from(l)],
            StatusPipe {
                fd: Some(std::os::fd::AsFd::as_fd(w)),
                pid: 5,
                generation: 1,
            },
            Arc::new(move |conn| {
                let _ = tx
                    .lock()
                    .map(|t| t.send(matches!(conn, Connection::Unix(_))));
            }),
        )
        .expect("spawn");
        let _a = UnixStream::connect(&path).expect("connect");
        let _b = UnixStream::connect(&path).expect("connect");
        for _ in 0..2 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        }
        let mut buf = [0u8; 4 * STATUS_LEN];
        std::fs::File::from(r)
            .read_exact(&mut buf)
            .expect("records");
        let kinds: Vec<StatusKind> = buf
            .chunks(STATUS_LEN)
            .filter_map(|c| ChildStatus::decode(c.try_into().ok()?))
            .map(|s| s.kind)
            .collect();
        use StatusKind::{Avail, Taken};
        assert_eq!(kinds, [Taken, Avail, Taken, Avail]);
        let _ = std::fs::remove_file(path);
    }
}
