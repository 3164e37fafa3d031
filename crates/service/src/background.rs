//! Acceptor threads for the shapes whose main thread runs the daemon's own loop
//! (multi_server, event_server): one thread per listener waits for a client and hands
//! it over, reporting TAKEN before and AVAIL after the hand-over. A thread stops
//! accepting as soon as the status pipe breaks (reload, or master gone), as Postfix's
//! old generation does: a process that is only finishing its work must not take the
//! clients (qmgr's wake-up triggers) meant for its successor.

use crate::daemon::StartError;
use crate::serve::{wait_for_client, Listener, Waited};
use crate::status::StatusPipe;
use crate::Connection;
use rostfix_proto::StatusKind;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Starts one acceptor thread per listener. A thread ends when the status pipe breaks;
/// the process exits when the daemon's main loop returns.
pub(crate) fn spawn_acceptors(
    listeners: Vec<OwnedFd>,
    status: StatusPipe<'static>,
    on_client: Arc<dyn Fn(Connection) + Send + Sync>,
) -> Result<(), StartError> {
    let failed = |source| StartError::Thread {
        what: "acceptor",
        source,
    };
    for listener in crate::serve::listeners(listeners, false) {
        let on_client = Arc::clone(&on_client);
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(listener, status, &*on_client))
            .map_err(failed)?;
    }
    Ok(())
}

/// Serves clients until the status pipe breaks, then closes this process's copy of
/// the listener (master's stays open for the next generation).
fn accept_loop(listener: Listener, status: StatusPipe<'_>, on_client: &dyn Fn(Connection)) {
    // Polling with the status pipe rather than blocking in accept: a thread blocked in
    // accept cannot see the reload and would take the next client. The listener is
    // non-blocking (serve::listeners), so a client another process took first costs
    // one wasted wake-up, not a thread stuck in accept.
    loop {
        match wait_for_client(std::slice::from_ref(&listener), status.fd, None) {
            Waited::Client(conn) => {
                // Master gone is the main loop's to notice; a report it cannot read
                // changes nothing.
                let _ = status.report(StatusKind::Taken);
                on_client(conn);
                let _ = status.report(StatusKind::Avail);
            }
            Waited::Timeout | Waited::Again => {}
            Waited::MasterGone => return,
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
    use std::time::Duration;

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

    #[test]
    fn a_broken_status_pipe_stops_accepting_and_leaves_clients_to_the_next_generation() {
        let path = std::env::temp_dir().join(format!(
            "rostfix-service-bg-reload-{}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        // Master's copy of the listening socket, which outlives the old generation.
        let master_copy = l.try_clone().expect("dup");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let w: &'static OwnedFd = Box::leak(Box::new(w));
        let listener = crate::serve::listeners(vec![OwnedFd::from(l)], false)
            .pop()
            .expect("listener");
        let (done_tx, done_rx) = mpsc::channel();
        let (client_tx, client_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let status = StatusPipe {
                fd: Some(std::os::fd::AsFd::as_fd(w)),
                pid: 5,
                generation: 1,
            };
            accept_loop(listener, status, &|_conn| {
                let _ = client_tx.send(());
            });
            let _ = done_tx.send(());
        });
        // A reload: master closes its end of the old generation's pipe.
        drop(r);
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)), Ok(()));
        // A client that comes after the reload waits for the new generation: still in the
        // backlog of master's copy, never handed to the old process.
        let _c = UnixStream::connect(&path).expect("connect");
        master_copy.set_nonblocking(true).expect("nonblocking");
        assert!(master_copy.accept().is_ok(), "the client is still waiting");
        assert!(client_rx.try_recv().is_err());
        let _ = std::fs::remove_file(path);
    }
}
