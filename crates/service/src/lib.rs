//! The skeleton every Rostfix daemon runs in (like Postfix's single_server/trigger_server):
//! parse the arguments master passes, load main.cf with `-o` overrides, start logging,
//! let the daemon open what it needs, then confine (chroot, drop to mail_owner, drop
//! capabilities) and serve connections from the listening sockets master handed over,
//! reporting busy/idle on the status pipe. docs/ipc.md describes the fd conventions.
//!
//! Conventions (set by master, see crates/master):
//! - argv: `-n NAME -t TYPE [-c] [-u] [-l] [-z] [-v] [-o name=value]...` then any other
//!   arguments from master.cf. `-c` = chroot into queue_directory, `-u` = run as
//!   mail_owner (unpriv), `-l` = maxproc 1, `-z` = maxproc 0 (unlimited).
//! - env: `MAIL_CONFIG` = configuration directory, `GENERATION` = master generation,
//!   `LISTEN_FDS` = number of listening sockets.
//! - fd 3: status pipe (write end); fds 4 .. 4+LISTEN_FDS-1: listening sockets.
//!
//! After [`Service::confine`] the working directory is queue_directory (or `/` inside
//! the chroot, which is the same place): every queue path is relative, e.g.
//! `incoming/ID`, `public/qmgr`.

use rostfix_config::MainCf;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// First inherited listening socket.
pub const LISTEN_FD_START: i32 = 4;
/// The status pipe's write end in every child.
pub const STATUS_FD: i32 = 3;

/// Why a daemon could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("usage: {0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] rostfix_config::ConfigError),
    #[error(transparent)]
    Log(#[from] rostfix_maillog::LogError),
    #[error("unknown user {0} (mail_owner)")]
    UnknownUser(String),
    #[error("{what}: {source}")]
    Sys { what: String, #[source] source: std::io::Error },
}

/// Parsed command line of a daemon.
#[derive(Debug, Clone, Default)]
pub struct ServiceArgs {
    /// `-n`: service name from master.cf (e.g. `smtp`, `127.0.0.1:2525`, `submission`).
    pub name: String,
    /// `-t`: `inet`, `unix`, ...
    pub service_type: String,
    pub chroot: bool,
    pub unpriv: bool,
    pub verbose: bool,
    /// `-o` overrides in order.
    pub overrides: Vec<(String, String)>,
    /// Arguments master.cf gave that the skeleton does not know.
    pub extra: Vec<String>,
}

/// A daemon's runtime: configuration, arguments, inherited sockets.
#[derive(Debug)]
pub struct Service {
    pub args: ServiceArgs,
    pub config: MainCf,
    pub config_dir: PathBuf,
    pub generation: u32,
    /// The program name for logs (`smtpd`), combined with syslog_name.
    pub program: String,
}

/// One accepted client connection.
#[derive(Debug)]
pub enum Connection {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Service {
    /// Parses `std::env::args()`, loads main.cf from MAIL_CONFIG, applies `-o` overrides,
    /// starts logging as `syslog_name/program`. Logs each config warning once.
    pub fn init(program: &str) -> Result<Service, ServiceError> {
        let _ = program;
        todo!()
    }

    /// The listening sockets inherited from master (fds 4.., LISTEN_FDS of them).
    /// Call once; later calls return an empty list.
    pub fn take_listeners(&mut self) -> Vec<OwnedFd> {
        todo!()
    }

    /// chdir(queue_directory); when root: chroot(".") if `-c`, drop to mail_owner if `-u`
    /// (setgroups, setgid, setuid), then clear every capability set. Services without
    /// `-u` (local) keep root. When not root, does neither and logs once that it runs
    /// unconfined as the invoking user.
    pub fn confine(&mut self) -> Result<(), ServiceError> {
        todo!()
    }

    /// The single-client server loop: waits for a connection on any listener, reports
    /// TAKEN, calls `handler`, reports AVAIL; exits the process after `max_use` clients,
    /// after `max_idle` with no client, or when master goes away (status pipe broken) or
    /// on SIGTERM between clients. Never returns.
    pub fn serve<H>(mut self, listeners: Vec<OwnedFd>, mut handler: H) -> !
    where
        H: FnMut(&mut Service, Connection),
    {
        let _ = (&mut self, listeners, &mut handler);
        todo!()
    }

    /// True while master is alive (the status pipe still has a reader). Long-running
    /// services (qmgr, pickup) poll this to exit when master is gone.
    pub fn master_alive(&self) -> bool {
        todo!()
    }

    /// The raw status pipe fd, for event loops that want POLLERR on it (master gone).
    pub fn status_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        todo!()
    }
}
