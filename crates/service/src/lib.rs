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
//!
//! A daemon started by hand (no fd 3) works too: status reports are no-ops and
//! [`Service::master_alive`] stays true.

#![deny(unsafe_code)]

mod args;
mod background;
mod client_threads;
mod confine;
mod daemon;
mod exit_hooks;
mod inherit;
pub mod manual;
mod orphan;
pub mod pass;
mod serve;
mod signals;
mod status;
mod trigger;

pub use client_threads::ClientThreads;
pub use daemon::{fatal, run, ClientHandler, Daemon, Shape, StartError, TriggerHandler};
pub use exit_hooks::at_exit;
pub use orphan::PipeBroke;
pub use pass::Passed;
pub use trigger::{read_trigger, MAX_TRIGGER, TRIGGER_TIMEOUT};

use rostfix_config::MainCf;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

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
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
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
    /// `-l`: master runs at most one process of this service (maxproc 1).
    pub single: bool,
    /// `-z`: master runs any number of processes of this service (maxproc 0).
    pub unlimited: bool,
    /// `-o` overrides in order.
    pub overrides: Vec<(String, String)>,
    /// Arguments master.cf gave that the skeleton does not know.
    pub extra: Vec<String>,
}

impl ServiceArgs {
    /// Parses a daemon's arguments (without argv\[0\]); see the crate documentation.
    pub fn parse(argv: &[String]) -> Result<ServiceArgs, ServiceError> {
        args::parse_args(argv)
    }
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
    /// A client TCP connection received on a `pass` service, with the endpoints its
    /// sender (postscreen) established.
    Passed(pass::Passed),
}

impl Connection {
    /// Bounds every read and write on the connection by `timeout`.
    pub fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        match self {
            Connection::Tcp(s) => s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout))),
            Connection::Unix(s) => s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout))),
            Connection::Passed(p) => p
                .stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| p.stream.set_write_timeout(Some(timeout))),
        }
    }

    /// [`Connection::set_timeouts`], logging a failure: false means the connection must
    /// not be served, since its reads and writes would have no bound.
    pub fn bound_or_refuse(&self, timeout: Duration) -> bool {
        match self.set_timeouts(timeout) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot set socket timeouts: {e}");
                false
            }
        }
    }
}

/// ipc_timeout when main.cf sets it to zero (a zero socket timeout would mean none).
const DEFAULT_IPC_TIMEOUT: Duration = Duration::from_secs(3600);

impl Service {
    /// Parses `std::env::args()`, loads main.cf from MAIL_CONFIG, applies `-o` overrides,
    /// starts logging as `syslog_name/program`. Logs each config warning once.
    pub fn init(program: &str) -> Result<Service, ServiceError> {
        // First, before this process opens anything: see which inherited fds are real.
        inherit::snapshot();
        orphan::note_parent();
        signals::ignore_sigpipe().map_err(|source| ServiceError::Sys {
            what: "ignore SIGPIPE".to_string(),
            source,
        })?;
        let argv = std::env::args_os()
            .skip(1)
            .map(|a| {
                a.into_string()
                    .map_err(|a| ServiceError::Usage(format!("argument is not UTF-8: {a:?}")))
            })
            .collect::<Result<Vec<String>, ServiceError>>()?;
        let args = ServiceArgs::parse(&argv)?;
        let config_dir = rostfix_config::config_dir(None);
        let mut config = MainCf::load(&config_dir)?;
        for (name, value) in &args.overrides {
            config.set_override(name, value)?;
        }
        let generation_env = std::env::var("GENERATION").ok();
        let generation = parse_generation(generation_env.as_deref());

        let target = rostfix_maillog::target_for(
            &config.get("maillog_file"),
            &config.get("rostfix_maillog_format"),
        )?;
        rostfix_maillog::init(
            &config.get("syslog_name"),
            program,
            &config.get("myhostname"),
            target,
            args.verbose,
        )?;
        for warning in inherit::startup_warnings() {
            log::warn!("{warning}");
        }
        if generation.is_none() {
            if let Some(bad) = &generation_env {
                log::warn!("ignoring malformed GENERATION={bad:?}");
            }
        }
        log::debug!(
            "service {} type {} generation {}",
            args.name,
            args.service_type,
            generation.unwrap_or(0)
        );
        Ok(Service {
            args,
            config,
            config_dir,
            generation: generation.unwrap_or(0),
            program: program.to_string(),
        })
    }

    /// The listening sockets inherited from master (fds 4.., LISTEN_FDS of them).
    /// Call once; later calls return an empty list. They are close-on-exec.
    pub fn take_listeners(&mut self) -> Vec<OwnedFd> {
        inherit::take_listeners()
    }

    /// chdir(queue_directory); when root: chroot(".") if `-c`, drop to mail_owner if `-u`
    /// (setgroups, setgid, setuid), then clear every capability set. Services without
    /// `-u` (local) keep root. When not root, does neither and logs once that it runs
    /// unconfined as the invoking user.
    pub fn confine(&mut self) -> Result<(), ServiceError> {
        confine::confine(
            &self.args,
            &self.config.get("queue_directory"),
            &self.config.get("mail_owner"),
        )
    }

    /// The single-client server loop: waits for a connection on any listener, reports
    /// TAKEN, calls `handler`, reports AVAIL; exits the process after `max_use` clients,
    /// after `max_idle` with no client, or when master goes away (status pipe broken) or
    /// on SIGTERM between clients, after running the [`at_exit`] hooks. Never returns.
    ///
    /// SIGTERM during a client lets the handler finish (so a delivery is never cut in
    /// half), then the process exits; master's SIGKILL after its grace period remains
    /// the backstop for a handler that hangs.
    pub fn serve<H>(mut self, listeners: Vec<OwnedFd>, mut handler: H) -> !
    where
        H: FnMut(&mut Service, Connection),
    {
        if let Err(e) = signals::catch_sigterm() {
            log::warn!("cannot catch SIGTERM: {e}");
        }
        let listeners = serve::listeners(listeners, self.args.service_type == "pass");
        if listeners.is_empty() {
            fatal(&self.program, &StartError::NoListener);
        }
        let max_idle = self.config.get_time("max_idle");
        let limits = serve::Limits {
            max_use: u64::try_from(self.config.get_int("max_use")).unwrap_or(0),
            max_idle: (!max_idle.is_zero()).then_some(max_idle),
        };
        let status = self.status_pipe();
        let listener_fds: Vec<_> = listeners.iter().map(serve::Listener::as_fd).collect();
        orphan::watch(status.fd, &listener_fds);
        drop(listener_fds);
        let stop = serve::run_loop(
            &listeners,
            status,
            limits,
            &signals::terminate_requested,
            &mut |conn| handler(&mut self, conn),
        );
        match stop {
            serve::Stop::MaxUse => log::debug!("max_use reached; exiting"),
            serve::Stop::Idle => log::debug!("idle timeout; exiting"),
            serve::Stop::MasterGone => log::debug!("master is gone; exiting"),
            serve::Stop::Terminated => log::debug!("terminated by SIGTERM; exiting"),
        }
        exit_hooks::run();
        std::process::exit(0)
    }

    /// True while master is alive (the status pipe still has a reader). Long-running
    /// services (qmgr, pickup) poll this to exit when master is gone. Always true when
    /// the process was not started by master (no status pipe).
    pub fn master_alive(&self) -> bool {
        status::StatusPipe {
            fd: inherit::status_fd(),
            pid: 0,
            generation: self.generation,
        }
        .alive()
    }

    /// True once SIGTERM arrived, for daemons whose main loop caught it (event daemons):
    /// master is stopping the mail system and will SIGKILL after its grace period.
    pub fn terminating(&self) -> bool {
        signals::terminate_requested()
    }

    /// Once [`Service::master_alive`] is false: whether master itself died (we were
    /// re-parented) or a reload retired this process's generation (master runs on and
    /// started new processes). Blocks up to two seconds while the re-parenting that
    /// follows a dying master's closed pipe may still come. A routine reload is no
    /// news for the log; a dead master is.
    pub fn why_pipe_broke(&self) -> PipeBroke {
        orphan::classify_now()
    }

    /// Where this process reports TAKEN/AVAIL.
    fn status_pipe(&self) -> status::StatusPipe<'static> {
        status::StatusPipe {
            fd: inherit::status_fd(),
            pid: std::process::id() as i32,
            generation: self.generation,
        }
    }

    /// How long one side of a service exchange (delivery, bounce) may wait for the
    /// other: main.cf's ipc_timeout (docs/ipc.md, "Framing").
    pub fn ipc_timeout(&self) -> Duration {
        let t = self.config.get_time("ipc_timeout");
        if t.is_zero() {
            DEFAULT_IPC_TIMEOUT
        } else {
            t
        }
    }

    /// The raw status pipe fd, for event loops that want POLLERR on it (master gone).
    /// None when the process was not started by master.
    pub fn status_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        inherit::status_fd()
    }
}

/// GENERATION as a number; None when missing or malformed (then 0 is used).
fn parse_generation(value: Option<&str>) -> Option<u32> {
    value?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_values() {
        assert_eq!(parse_generation(Some("7")), Some(7));
        assert_eq!(parse_generation(Some(" 12 ")), Some(12));
        assert_eq!(parse_generation(Some("x")), None);
        assert_eq!(parse_generation(Some("-1")), None);
        assert_eq!(parse_generation(None), None);
    }

    #[test]
    fn public_parse_matches_master_argv() {
        let argv: Vec<String> = ["-n", "smtp", "-t", "unix", "-u"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = ServiceArgs::parse(&argv).unwrap();
        assert_eq!((a.name.as_str(), a.unpriv), ("smtp", true));
    }
}
