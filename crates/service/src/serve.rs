//! The single-client server loop (Postfix's single_server): wait on every listener and
//! the status pipe, accept one client, report TAKEN, serve it, report AVAIL; exit after
//! max_use clients, max_idle without one, when master is gone, or on SIGTERM.

use crate::status::{is_broken, MasterGone, StatusPipe};
use crate::Connection;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rostfix_proto::StatusKind;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

/// An inherited listening socket, non-blocking so that losing the accept race to a
/// sibling child is an EAGAIN instead of a hang.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
    /// A `pass` service's unix socket: each connection on it carries one client TCP
    /// connection (crate::pass), and that client is what the handler gets.
    Pass(UnixListener),
}

impl Listener {
    /// Wraps an inherited fd after asking the kernel what family it is.
    pub(crate) fn from_fd(fd: OwnedFd, pass: bool) -> io::Result<Listener> {
        use nix::sys::socket::{getsockname, AddressFamily, SockaddrLike, SockaddrStorage};
        let addr: SockaddrStorage = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        let listener = match addr.family() {
            Some(AddressFamily::Inet | AddressFamily::Inet6) => {
                Listener::Tcp(TcpListener::from(fd))
            }
            Some(AddressFamily::Unix) if pass => Listener::Pass(UnixListener::from(fd)),
            Some(AddressFamily::Unix) => Listener::Unix(UnixListener::from(fd)),
            other => {
                return Err(io::Error::other(format!(
                    "unsupported listening socket family {other:?}"
                )))
            }
        };
        // The flag is on the open file description shared with master and siblings;
        // master only polls the socket, so it does not care.
        match &listener {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Unix(l) | Listener::Pass(l) => l.set_nonblocking(true)?,
        }
        Ok(listener)
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) | Listener::Pass(l) => l.as_fd(),
        }
    }

    /// Accepts one client and makes its socket blocking (the handler does plain reads
    /// and writes with timeouts).
    pub(crate) fn accept(&self) -> io::Result<Connection> {
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept()?;
                stream.set_nonblocking(false)?;
                Ok(Connection::Tcp(stream))
            }
            Listener::Unix(l) => {
                let (stream, _) = l.accept()?;
                stream.set_nonblocking(false)?;
                Ok(Connection::Unix(stream))
            }
            Listener::Pass(l) => {
                let (channel, _) = l.accept()?;
                channel.set_nonblocking(false)?;
                // The sender writes the message right after connecting; a sender that
                // connects and says nothing must not hold this process.
                channel.set_read_timeout(Some(PASS_TIMEOUT))?;
                let passed = crate::pass::receive_connection(&channel).map_err(|e| match e {
                    crate::pass::PassError::Io(e) => e,
                    other => io::Error::other(other.to_string()),
                })?;
                Ok(Connection::Passed(passed))
            }
        }
    }
}

/// How long a `pass` service waits for the descriptor after a sender connected.
const PASS_TIMEOUT: Duration = Duration::from_secs(10);

/// Wraps the inherited fds; one that is not a usable socket is logged and skipped.
/// `pass`: the service's type is `pass` (its unix sockets carry client connections).
pub(crate) fn listeners(fds: Vec<OwnedFd>, pass: bool) -> Vec<Listener> {
    fds.into_iter()
        .filter_map(|fd| match Listener::from_fd(fd, pass) {
            Ok(l) => Some(l),
            Err(e) => {
                log::warn!("ignoring inherited listening socket: {e}");
                None
            }
        })
        .collect()
}

/// What one wait on the listeners produced.
#[derive(Debug)]
pub(crate) enum Waited {
    Client(Connection),
    /// The timeout passed with no client.
    Timeout,
    /// Nothing to do this time: a signal, a lost accept race, a transient error.
    Again,
    /// The status pipe is broken: master exited or reloaded.
    MasterGone,
}

/// One wait: poll the listeners and the status pipe for at most `timeout` (None = no
/// limit), then accept from the first readable listener.
pub(crate) fn wait_for_client(
    listeners: &[Listener],
    status: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> Waited {
    let mut fds: Vec<PollFd<'_>> = listeners
        .iter()
        .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
        .collect();
    if let Some(fd) = status {
        // No events requested: POLLERR/POLLHUP are always reported.
        fds.push(PollFd::new(fd, PollFlags::empty()));
    }
    let timeout = match timeout {
        None => PollTimeout::NONE,
        // Round up so a sub-millisecond remainder does not spin; clamp to poll's range.
        Some(d) => {
            PollTimeout::try_from(d.as_millis().saturating_add(1).min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX)
        }
    };
    match poll(&mut fds, timeout) {
        Ok(0) => return Waited::Timeout,
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Waited::Again,
        Err(e) => {
            log::warn!("poll: {e}");
            // Avoid a busy loop on a persistent error; the idle timer still runs.
            std::thread::sleep(Duration::from_millis(100));
            return Waited::Again;
        }
    }
    if status.is_some() && fds.last().and_then(PollFd::revents).is_some_and(is_broken) {
        return Waited::MasterGone;
    }
    for (listener, fd) in listeners.iter().zip(&fds) {
        let Some(revents) = fd.revents() else {
            continue;
        };
        if !revents.intersects(PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP) {
            continue;
        }
        match listener.accept() {
            Ok(conn) => return Waited::Client(conn),
            // Another child won the race, or the client went away before we got to it.
            Err(e) if is_transient_accept_error(&e) => {}
            Err(e) => {
                // EMFILE and the like: the socket stays readable, so pause rather than
                // spin and flood the log.
                log::warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Waited::Again
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

/// Why the loop ended (the caller exits 0 for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    MaxUse,
    Idle,
    MasterGone,
    Terminated,
}

/// Limits of one serve loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// 0 = unlimited.
    pub max_use: u64,
    /// None = wait for ever.
    pub max_idle: Option<Duration>,
}

/// Runs the loop until a stop condition; `handle` serves one client.
pub(crate) fn run_loop(
    listeners: &[Listener],
    status: StatusPipe<'_>,
    limits: Limits,
    terminate: &dyn Fn() -> bool,
    handle: &mut dyn FnMut(Connection),
) -> Stop {
    let mut uses: u64 = 0;
    let mut idle_since = Instant::now();
    loop {
        if terminate() {
            return Stop::Terminated;
        }
        let remaining = match limits.max_idle {
            None => None,
            Some(max) => match max.checked_sub(idle_since.elapsed()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Stop::Idle,
            },
        };
        match wait_for_client(listeners, status.fd, remaining) {
            Waited::Client(conn) => {
                // Even if master is gone the client is already accepted: serve it,
                // then leave (as after a reload, the old generation drains).
                let told = status.report(StatusKind::Taken);
                handle(conn);
                uses += 1;
                if told == Err(MasterGone) {
                    return Stop::MasterGone;
                }
                if limits.max_use > 0 && uses >= limits.max_use {
                    return Stop::MaxUse;
                }
                if status.report(StatusKind::Avail) == Err(MasterGone) {
                    return Stop::MasterGone;
                }
                idle_since = Instant::now();
            }
            Waited::Timeout | Waited::Again => {}
            Waited::MasterGone => return Stop::MasterGone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::{ChildStatus, STATUS_LEN};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    fn socket_path(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "rostfix-service-{}-{name}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn unix_listener(name: &str) -> (Listener, PathBuf) {
        let path = socket_path(name);
        let l = UnixListener::bind(&path).unwrap();
        (Listener::from_fd(OwnedFd::from(l), false).unwrap(), path)
    }

    #[test]
    fn lost_races_are_transient() {
        assert!(is_transient_accept_error(&io::ErrorKind::WouldBlock.into()));
        assert!(is_transient_accept_error(
            &io::ErrorKind::ConnectionAborted.into()
        ));
        assert!(is_transient_accept_error(&io::Error::from_raw_os_error(
            libc::EPROTO
        )));
        assert!(!is_transient_accept_error(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
    }

    #[test]
    fn family_is_detected_and_listener_made_non_blocking() {
        let (l, path) = unix_listener("family");
        assert!(matches!(l, Listener::Unix(_)));
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = Listener::from_fd(OwnedFd::from(tcp), false).unwrap();
        assert!(matches!(t, Listener::Tcp(_)));
        // Non-blocking: with nobody connecting, accept fails at once with WouldBlock.
        let err = l.accept().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn accepts_a_waiting_client_as_a_blocking_socket() {
        let (l, path) = unix_listener("accept");
        let mut client = UnixStream::connect(&path).unwrap();
        client.write_all(b"hi").unwrap();
        match wait_for_client(std::slice::from_ref(&l), None, Some(Duration::from_secs(5))) {
            Waited::Client(Connection::Unix(mut s)) => {
                let flags = nix::fcntl::fcntl(&s, nix::fcntl::FcntlArg::F_GETFL).unwrap();
                assert_eq!(flags & libc::O_NONBLOCK, 0);
                let mut buf = [0u8; 2];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"hi");
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn tcp_clients_come_back_as_tcp() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let l = Listener::from_fd(OwnedFd::from(tcp), false).unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let got = wait_for_client(std::slice::from_ref(&l), None, Some(Duration::from_secs(5)));
        assert!(matches!(got, Waited::Client(Connection::Tcp(_))), "{got:?}");
    }

    #[test]
    fn times_out_without_a_client() {
        let (l, path) = unix_listener("timeout");
        let start = Instant::now();
        let got = wait_for_client(&[l], None, Some(Duration::from_millis(50)));
        assert!(matches!(got, Waited::Timeout), "{got:?}");
        assert!(start.elapsed() >= Duration::from_millis(50));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn broken_status_pipe_is_master_gone() {
        let (l, path) = unix_listener("gone");
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let got = wait_for_client(&[l], Some(w.as_fd()), Some(Duration::from_secs(5)));
        assert!(matches!(got, Waited::MasterGone), "{got:?}");
        let _ = std::fs::remove_file(path);
    }

    fn read_statuses(r: OwnedFd) -> Vec<StatusKind> {
        let mut reader = std::fs::File::from(r);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        all.chunks(STATUS_LEN)
            .map(|c| {
                let rec: [u8; STATUS_LEN] = c.try_into().unwrap();
                ChildStatus::decode(&rec).unwrap().kind
            })
            .collect()
    }

    #[test]
    fn loop_serves_max_use_clients_with_taken_and_avail() {
        let (l, path) = unix_listener("maxuse");
        let (r, w) = nix::unistd::pipe().unwrap();
        let clients: Vec<UnixStream> = (0..3)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        let mut served = Vec::new();
        let stop = run_loop(
            &[l],
            StatusPipe {
                fd: Some(w.as_fd()),
                pid: 7,
                generation: 1,
            },
            Limits {
                max_use: 2,
                max_idle: Some(Duration::from_secs(5)),
            },
            &|| false,
            &mut |conn| served.push(matches!(conn, Connection::Unix(_))),
        );
        assert_eq!(stop, Stop::MaxUse);
        assert_eq!(served, vec![true, true]);
        drop(w);
        // After the last allowed client the child leaves without a final AVAIL.
        assert_eq!(
            read_statuses(r),
            vec![StatusKind::Taken, StatusKind::Avail, StatusKind::Taken]
        );
        drop(clients);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn loop_exits_when_idle() {
        let (l, path) = unix_listener("idle");
        let start = Instant::now();
        let stop = run_loop(
            &[l],
            StatusPipe {
                fd: None,
                pid: 7,
                generation: 1,
            },
            Limits {
                max_use: 0,
                max_idle: Some(Duration::from_millis(80)),
            },
            &|| false,
            &mut |_| panic!("no client expected"),
        );
        assert_eq!(stop, Stop::Idle);
        assert!(start.elapsed() >= Duration::from_millis(80));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn loop_stops_on_terminate_before_accepting() {
        let (l, path) = unix_listener("term");
        let _client = UnixStream::connect(&path).unwrap();
        let stop = run_loop(
            &[l],
            StatusPipe {
                fd: None,
                pid: 7,
                generation: 1,
            },
            Limits {
                max_use: 0,
                max_idle: None,
            },
            &|| true,
            &mut |_| panic!("must not serve after SIGTERM"),
        );
        assert_eq!(stop, Stop::Terminated);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn broken_pipe_wins_over_a_waiting_client() {
        let (l, path) = unix_listener("drain");
        let (r, w) = nix::unistd::pipe().unwrap();
        let _client = UnixStream::connect(&path).unwrap();
        // The client is already waiting, so it is polled readable together with the
        // broken pipe; a broken pipe wins and nothing is accepted.
        drop(r);
        let mut served = 0;
        let stop = run_loop(
            &[l],
            StatusPipe {
                fd: Some(w.as_fd()),
                pid: 7,
                generation: 1,
            },
            Limits {
                max_use: 0,
                max_idle: Some(Duration::from_secs(5)),
            },
            &|| false,
            &mut |_| served += 1,
        );
        assert_eq!(stop, Stop::MasterGone);
        assert_eq!(served, 0);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn loop_serves_clients_until_idle() {
        // Two clients one after the other; max_use 0 and a short idle timer end it.
        let (l, path) = unix_listener("race");
        let (r, w) = nix::unistd::pipe().unwrap();
        let first = UnixStream::connect(&path).unwrap();
        let path2 = path.clone();
        let later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            UnixStream::connect(&path2).unwrap()
        });
        let mut served = 0;
        let stop = run_loop(
            &[l],
            StatusPipe {
                fd: Some(w.as_fd()),
                pid: 7,
                generation: 1,
            },
            Limits {
                max_use: 0,
                max_idle: Some(Duration::from_millis(300)),
            },
            &|| false,
            &mut |_| served += 1,
        );
        assert_eq!(stop, Stop::Idle);
        assert_eq!(served, 2);
        drop(w);
        assert_eq!(
            read_statuses(r),
            vec![
                StatusKind::Taken,
                StatusKind::Avail,
                StatusKind::Taken,
                StatusKind::Avail
            ]
        );
        drop(first);
        drop(later.join().unwrap());
        let _ = std::fs::remove_file(path);
    }
}
