//! Opening the listening sockets of a service: inet (SO_REUSEADDR, v6-only for IPv6)
//! and unix (stale socket removed, mode from the umask at bind). All are non-blocking
//! and close-on-exec in master; the child gets them as fds 4.. with close-on-exec
//! cleared.
//!
//! public/ and private/ belong to mail_owner, whose daemons could plant a symbolic
//! link there at any moment, so master (root) never works in them by path with
//! root's rights: as Postfix's master does (set_eugid around the listener), every
//! unlink, bind and connect there happens with mail_owner's effective ids, and the
//! socket's mode comes from the umask at bind instead of a chmod/chown afterwards.

use crate::error::io;
use crate::plan::Endpoint;
use crate::MasterError;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage, UnixAddr,
};
use nix::sys::stat::{umask, Mode};
use rostfix_privilege::{EugidGuard, Ids};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// Where Linux caps every listen backlog (a larger request is silently cut down).
const SOMAXCONN_PATH: &str = "/proc/sys/net/core/somaxconn";

/// How many times its process limit an inet service's accept queue holds, up to the
/// kernel's cap. Postfix sizes the backlog at the process limit; a burst of clients
/// beyond it then has its handshakes dropped and retried on the clients' SYN back-off
/// (1, 3, 7 s...), so 500 sessions against 100 smtpd processes ran at an eighth of the
/// rate of 100 (both suites, docs/performance.md). Waiting in the queue, a client is
/// served as soon as a process is free; each waiting connection costs the kernel a
/// socket.
const BURST_FACTOR: i32 = 8;

/// The listen backlog of a service: the larger of its maxproc and
/// default_process_limit (Postfix's sizing: a burst as large as the process limit
/// waits in the accept queue). An inet service (`burst`) queues [`BURST_FACTOR`] times
/// that, as far as `somaxconn` (the kernel's cap, when known) allows, never below
/// Postfix's sizing: that part is warned about when the kernel cuts it
/// ([`warn_if_capped`]).
///
/// UNIX-domain and FIFO services keep Postfix's sizing: their clients are our own
/// daemons, which bound their own concurrency to the process limit (qmgr, for one,
/// counts a delivery as started once its connect returns, so a deeper queue there
/// would only hide that every agent is busy).
pub fn service_backlog(
    maxproc: u32,
    default_process_limit: u32,
    burst: bool,
    somaxconn: Option<i32>,
) -> i32 {
    let limit = i32::try_from(maxproc.max(default_process_limit).max(1)).unwrap_or(i32::MAX);
    if !burst {
        return limit;
    }
    let deep = limit.saturating_mul(BURST_FACTOR);
    match somaxconn {
        Some(cap) => deep.min(cap).max(limit),
        None => deep,
    }
}

/// net.core.somaxconn, when readable.
pub fn somaxconn() -> Option<i32> {
    std::fs::read_to_string(SOMAXCONN_PATH)
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// Warns when the kernel will cut `wanted` down (net.core.somaxconn, 4096 by default
/// since Linux 5.4): the burst the service can absorb is then the kernel's limit.
pub fn warn_if_capped(service: &str, wanted: i32) {
    if let Some(cap) = somaxconn() {
        if cap < wanted {
            log::warn!(
                "service {service}: listen backlog {wanted} exceeds net.core.somaxconn \
                 {cap}; the kernel uses {cap}"
            );
        }
    }
}

/// Who owns public/ and private/ (mail_owner, when master runs as root): their
/// sockets are made with these effective ids, and so belong to them.
#[derive(Debug, Clone, Copy)]
pub struct SocketOwner {
    pub uid: nix::unistd::Uid,
    pub gid: nix::unistd::Gid,
}

/// Mode bits a unix socket must NOT get: public ones are 0666 (the 0710 directory
/// restricts access), private ones 0755 (only their owner may connect).
const PUBLIC_UMASK: u32 = 0o111;
const PRIVATE_UMASK: u32 = 0o022;

/// Runs `work` with `owner`'s effective ids (none given: as we are).
pub fn as_owner<T>(
    owner: Option<SocketOwner>,
    work: impl FnOnce() -> Result<T, MasterError>,
) -> Result<T, MasterError> {
    let _guard = match owner {
        Some(owner) => Some(
            EugidGuard::switch(Ids {
                uid: owner.uid,
                gid: owner.gid,
            })
            .map_err(|e| MasterError::sys("set_eugid", std::io::Error::other(e)))?,
        ),
        None => None,
    };
    work()
}

fn flags() -> SockFlag {
    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK
}

fn backlog(size: i32) -> Result<Backlog, MasterError> {
    Backlog::new(size).map_err(|e| MasterError::sys("listen backlog", io(e)))
}

/// Opens one listening TCP socket.
pub fn open_inet(addr: SocketAddr, backlog_size: i32) -> Result<OwnedFd, MasterError> {
    let what = || format!("bind {addr}");
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, flags(), None)
        .map_err(|e| MasterError::sys(what(), io(e)))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| MasterError::sys(what(), io(e)))?;
    if addr.is_ipv6() {
        // So that [::]:25 and 0.0.0.0:25 can both be bound, as Postfix does.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(|e| MasterError::sys(what(), io(e)))?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))
        .map_err(|e| MasterError::sys(what(), io(e)))?;
    listen(&fd, backlog(backlog_size)?).map_err(|e| MasterError::sys(what(), io(e)))?;
    Ok(fd)
}

/// Opens one listening unix socket at `path`, replacing a stale socket (never any other
/// kind of file), with `owner`'s effective ids (see the module comment). Public sockets
/// get mode 0666, private ones 0755.
pub fn open_unix(
    path: &Path,
    public: bool,
    owner: Option<SocketOwner>,
    backlog_size: i32,
) -> Result<OwnedFd, MasterError> {
    as_owner(owner, || open_unix_here(path, public, backlog_size))
}

/// [`open_unix`] with the ids we have now.
fn open_unix_here(path: &Path, public: bool, backlog_size: i32) -> Result<OwnedFd, MasterError> {
    let what = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| MasterError::sys(what(), e))?;
        }
        Ok(_) => {
            return Err(MasterError::sys(
                what(),
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(MasterError::sys(what(), e)),
    }
    let fd = socket(AddressFamily::Unix, SockType::Stream, flags(), None)
        .map_err(|e| MasterError::sys(what(), io(e)))?;
    let addr = UnixAddr::new(path).map_err(|e| MasterError::sys(what(), io(e)))?;
    // The mode is fixed at creation: no window in which the name could be swapped
    // between bind and a chmod. master is single-threaded, so the umask change
    // affects no other file creation.
    let mask = if public { PUBLIC_UMASK } else { PRIVATE_UMASK };
    let previous = umask(Mode::from_bits_truncate(mask));
    let bound = bind(fd.as_raw_fd(), &addr);
    umask(previous);
    bound.map_err(|e| MasterError::sys(what(), io(e)))?;
    listen(&fd, backlog(backlog_size)?).map_err(|e| MasterError::sys(what(), io(e)))?;
    Ok(fd)
}

/// Gives sockets that already listen a new backlog (a reload changed maxproc or
/// default_process_limit); Linux applies a repeated listen(2) to the accept queue.
pub fn resize_backlog(fds: &[OwnedFd], backlog_size: i32) -> Result<(), MasterError> {
    for fd in fds {
        listen(fd, backlog(backlog_size)?).map_err(|e| MasterError::sys("listen", io(e)))?;
    }
    Ok(())
}

/// Opens every endpoint of a service; on any failure the ones already opened are
/// closed (and their unix sockets removed).
pub fn open_all(
    endpoints: &[Endpoint],
    public: bool,
    owner: Option<SocketOwner>,
    backlog_size: i32,
) -> Result<Vec<OwnedFd>, MasterError> {
    let mut fds = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let opened = match endpoint {
            Endpoint::Inet(addr) => open_inet(*addr, backlog_size),
            Endpoint::Unix(path) => open_unix(path, public, owner, backlog_size),
        };
        match opened {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                drop(fds);
                remove_unix(&endpoints[..index], owner);
                return Err(e);
            }
        }
    }
    Ok(fds)
}

/// Removes the unix sockets among `endpoints` (after closing them), with `owner`'s
/// effective ids.
pub fn remove_unix(endpoints: &[Endpoint], owner: Option<SocketOwner>) {
    let removed = as_owner(owner, || {
        for endpoint in endpoints {
            if let Endpoint::Unix(path) = endpoint {
                if let Err(e) = std::fs::remove_file(path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        log::warn!("remove {}: {e}", path.display());
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(e) = removed {
        log::warn!("{e}");
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // fork/_exit in tests, each stating why it is sound
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn unix_socket_replaces_stale_socket_but_not_files() {
        let dir = std::env::temp_dir().join(format!("master-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmgr");
        let _ = std::fs::remove_file(&path);
        let first = open_unix(&path, true, None, 100).unwrap();
        drop(first);
        let second = open_unix(&path, true, None, 100).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o666
        );
        std::os::unix::net::UnixStream::connect(&path).unwrap();
        drop(second);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "not a socket").unwrap();
        assert!(open_unix(&path, true, None, 100).is_err());
        assert!(path.is_file(), "a regular file is left alone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_socket_mode_comes_from_the_umask() {
        let dir = std::env::temp_dir().join(format!("master-listen-p-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("local");
        let _ = std::fs::remove_file(&path);
        let fd = open_unix(&path, false, None, 100).unwrap();
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode();
        drop(fd);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(mode & 0o777, 0o755);
    }

    /// As root: the socket is made by the owner (so it belongs to them) and master is
    /// root again afterwards. In a child: effective ids are process-wide and the test
    /// harness runs other tests in threads.
    #[test]
    fn socket_made_with_the_owners_ids() {
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult, Gid, Uid};
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("master-listen-o-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("pickup");
        // SAFETY: the child makes system calls and small allocations, then _exit.
        let code = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let owner = SocketOwner {
                    uid: Uid::from_raw(65534),
                    gid: Gid::from_raw(65534),
                };
                let code = match open_unix(&path, true, Some(owner), 100) {
                    Ok(_) if nix::unistd::geteuid().is_root() => 0,
                    Ok(_) => 1,
                    Err(_) => 2,
                };
                // SAFETY: leaves the child without the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => code,
                other => panic!("{other:?}"),
            },
        };
        let meta = std::fs::symlink_metadata(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(code, 0);
        let meta = meta.unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        assert_eq!(meta.mode() & 0o777, 0o666);
    }

    #[test]
    fn inet_socket_listens() {
        let fd = open_inet("127.0.0.1:0".parse().unwrap(), 100).unwrap();
        let listener = std::net::TcpListener::from(fd);
        let addr = listener.local_addr().unwrap();
        std::net::TcpStream::connect(addr).unwrap();
        // Binding the same port again while it listens fails.
        assert!(open_inet(addr, 100).is_err());
    }

    #[test]
    fn inet_backlog_is_eight_process_limits_within_the_kernel_cap() {
        // The process limit is the larger of maxproc and default_process_limit.
        assert_eq!(service_backlog(2, 100, true, Some(4096)), 800);
        assert_eq!(service_backlog(300, 100, true, Some(4096)), 2400);
        // Cut to the kernel's cap, but never below the process limit (warned).
        assert_eq!(service_backlog(1100, 100, true, Some(4096)), 4096);
        assert_eq!(service_backlog(1100, 100, true, Some(128)), 1100);
        assert_eq!(service_backlog(2, 100, true, None), 800);
        // maxproc 0 (unlimited) and default_process_limit 0 still listen.
        assert_eq!(service_backlog(0, 0, true, Some(4096)), 8);
        assert_eq!(service_backlog(u32::MAX, 100, true, None), i32::MAX);
    }

    #[test]
    fn local_sockets_keep_the_process_limit_as_backlog() {
        assert_eq!(service_backlog(2, 100, false, Some(4096)), 100);
        assert_eq!(service_backlog(300, 100, false, Some(4096)), 300);
        assert_eq!(service_backlog(0, 0, false, None), 1);
        assert_eq!(service_backlog(u32::MAX, 100, false, None), i32::MAX);
    }

    #[test]
    fn the_requested_backlog_reaches_the_kernel() {
        // The kernel shows a listener's backlog as Send-Q in sock_diag; simplest to
        // check its effect: more connections than 100 complete without accept().
        let fd = open_inet("127.0.0.1:0".parse().unwrap(), 300).unwrap();
        let listener = std::net::TcpListener::from(fd);
        let addr = listener.local_addr().unwrap();
        let clients: Vec<std::net::TcpStream> = (0..250)
            .map(|_| {
                // With a backlog of 100 the SYN of the 102nd would be dropped and
                // connect() would retry for minutes: bound it.
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
                    .unwrap()
            })
            .collect();
        listener.set_nonblocking(true).unwrap();
        let mut accepted = 0;
        while listener.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, clients.len());
    }
}
