//! One call that runs a daemon (Postfix's `*_server_main`): [`run`] parses the
//! arguments, loads main.cf, starts logging, calls the daemon's hook before confinement,
//! confines, calls its hook after confinement, and serves in the [`Shape`] that hook
//! chose. Every start-up failure ends in one place: [`StartError`] is logged as
//! `fatal: ...` and mapped to the exit status.

use crate::{background, trigger, Connection, Service, ServiceError};
use rostfix_proto::Trigger;
use std::sync::Arc;
use std::time::Duration;

/// EX_USAGE from sysexits(3): bad arguments.
const EXIT_USAGE: i32 = 64;
/// Any other start-up failure, as Postfix's msg_fatal.
const EXIT_FATAL: i32 = 1;

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A daemon's own start-up step failed (opening its tables, say).
    #[error(transparent)]
    Daemon(Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("no listening socket inherited from master (LISTEN_FDS)")]
    NoListener,
    #[error("cannot start a {what} thread: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    /// Wraps a daemon's own error type.
    pub fn daemon<E: std::error::Error + Send + Sync + 'static>(e: E) -> StartError {
        StartError::Daemon(Box::new(e))
    }

    /// The exit status master sees (non-zero throttles the service).
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Service(ServiceError::Usage(_)) => EXIT_USAGE,
            _ => EXIT_FATAL,
        }
    }
}

/// The single shape's handler: one client, served to its end.
pub type ClientHandler = Box<dyn FnMut(&mut Service, Connection)>;
/// The trigger shape's handler: a trigger, or None when the timer ran out.
pub type TriggerHandler = Box<dyn FnMut(&mut Service, Option<Trigger>)>;

/// The serving loop a daemon runs in after confinement: Postfix's four skeletons.
/// Each reports TAKEN/AVAIL on the status pipe around every unit of work, so master
/// counts the process as used and replaces it at once (no start-up throttle) if it is
/// killed later.
pub enum Shape {
    /// One client at a time, TAKEN/AVAIL around each; exits after max_use clients or
    /// max_idle without one (single_server: smtpd, smtp, local, bounce, showq).
    Single(ClientHandler),
    /// Many clients at once: an acceptor thread per listener hands each new client to
    /// `on_client` (which must return quickly, e.g. after starting a thread), with
    /// TAKEN/AVAIL around the hand-over; the main thread runs `main_loop` and the
    /// process exits when it returns (multi_server: anvil).
    Multi {
        on_client: Arc<dyn Fn(Connection) + Send + Sync>,
        main_loop: Box<dyn FnOnce(&Service)>,
    },
    /// One trigger frame per connection, handled on the main thread in turn with
    /// TAKEN/AVAIL around each; every connection calls `on_trigger` (None when it held
    /// no valid frame), and so does `every` passing without one. Exits when master is
    /// gone (trigger_server: pickup).
    Trigger {
        on_trigger: TriggerHandler,
        every: Option<Duration>,
    },
    /// The daemon owns its main loop (`main_loop`, exits the process when it returns);
    /// a thread per listener reads trigger frames and passes each to `on_trigger`,
    /// with TAKEN/AVAIL around each connection (qmgr, whose loop also waits on its
    /// delivery workers).
    Event {
        on_trigger: Arc<dyn Fn(Trigger) + Send + Sync>,
        main_loop: Box<dyn FnOnce(&Service)>,
    },
}

/// A daemon handed to [`run`].
pub struct Daemon<Before, After> {
    /// The name for logs and `fatal:` lines (`qmgr`).
    pub program: &'static str,
    /// Printed for `--help` / `-h`.
    pub help: crate::manual::Manual,
    /// Runs before confinement: open what the chroot or the dropped privileges would
    /// hide (tables, /etc/passwd look-ups, the time zone).
    pub before_confine: Before,
    /// Runs after confinement (working directory = queue_directory); returns the shape
    /// to serve in.
    pub after_confine: After,
}

/// Runs a daemon to its end and exits the process: 0 when it retires normally, the
/// [`StartError::exit_code`] after logging `fatal: ...` when it cannot start.
///
/// A whole daemon (docs/ARCHITECTURE.md shows the same):
///
/// ```no_run
/// use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};
/// use rostfix_service::{Connection, Daemon, Service, Shape};
///
/// const HELP: Manual = Manual {
///     name: "echo - says back what it is told",
///     synopsis: "echo -n echo -t unix [-u]",
///     description: "Writes back every byte a client sends.",
///     more_options: "",
///     exit_status: RETIRING_EXIT_STATUS,
///     see_also: "master(8)",
/// };
///
/// fn main() {
///     rostfix_service::run(Daemon {
///         program: "echo",
///         help: HELP,
///         before_confine: |_: &mut Service| Ok(()),
///         after_confine: |service: &mut Service, ()| {
///             let timeout = service.ipc_timeout();
///             Ok(Shape::Single(Box::new(move |_, conn| {
///                 if let (Ok(()), Connection::Unix(s)) = (conn.set_timeouts(timeout), &conn) {
///                     let _ = std::io::copy(&mut &*s, &mut &*s);
///                 }
///             })))
///         },
///     })
/// }
/// ```
pub fn run<State, Before, After>(daemon: Daemon<Before, After>) -> !
where
    Before: FnOnce(&mut Service) -> Result<State, StartError>,
    After: FnOnce(&mut Service, State) -> Result<Shape, StartError>,
{
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        print!("{}", daemon.help);
        std::process::exit(0);
    }
    let program = daemon.program;
    match start(daemon) {
        Ok(()) => std::process::exit(0),
        Err(e) => fatal(program, &e),
    }
}

/// Logs a start-up failure the one way and exits with its status. Before logging is
/// up (argument or main.cf errors) only stderr can tell, so it is written there too.
pub fn fatal(program: &str, e: &StartError) -> ! {
    match e {
        StartError::Service(ServiceError::Usage(u)) => {
            eprintln!("{program}: usage: {u}\nTry '{program} --help'.");
        }
        _ => eprintln!("{program}: fatal: {e}"),
    }
    rostfix_maillog::fatal!("{e}");
    std::process::exit(e.exit_code())
}

fn start<State, Before, After>(daemon: Daemon<Before, After>) -> Result<(), StartError>
where
    Before: FnOnce(&mut Service) -> Result<State, StartError>,
    After: FnOnce(&mut Service, State) -> Result<Shape, StartError>,
{
    let mut service = Service::init(daemon.program)?;
    let listeners = service.take_listeners();
    let state = (daemon.before_confine)(&mut service)?;
    service.confine()?;
    match (daemon.after_confine)(&mut service, state)? {
        Shape::Single(handler) => {
            if listeners.is_empty() {
                return Err(StartError::NoListener);
            }
            service.serve(listeners, handler)
        }
        Shape::Multi {
            on_client,
            main_loop,
        } => {
            if listeners.is_empty() {
                return Err(StartError::NoListener);
            }
            background::spawn_acceptors(listeners, service.status_pipe(), on_client)?;
            // An event daemon owns work in flight (qmgr's deliveries): SIGTERM becomes a
            // flag its loop reads through Service::terminating, so it can finish that work
            // within master's shutdown grace instead of dying with it half-recorded.
            if let Err(e) = crate::signals::catch_sigterm() {
                log::warn!("cannot catch SIGTERM: {e}");
            }
            main_loop(&service);
        }
        Shape::Trigger { on_trigger, every } => {
            trigger::serve_triggers(service, listeners, every, on_trigger)
        }
        Shape::Event {
            on_trigger,
            main_loop,
        } => {
            if listeners.is_empty() {
                log::warn!("no trigger socket inherited from master; relying on timers");
            }
            let on_client = Arc::new(move |conn| {
                if let Some(t) = trigger::receive(conn, log::Level::Warn) {
                    on_trigger(t);
                }
            });
            background::spawn_acceptors(listeners, service.status_pipe(), on_client)?;
            // An event daemon owns work in flight (qmgr's deliveries): SIGTERM becomes a
            // flag its loop reads through Service::terminating, so it can finish that work
            // within master's shutdown grace instead of dying with it half-recorded.
            if let Err(e) = crate::signals::catch_sigterm() {
                log::warn!("cannot catch SIGTERM: {e}");
            }
            main_loop(&service);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_ex_usage_and_everything_else_is_1() {
        let usage = StartError::Service(ServiceError::Usage("-n".into()));
        assert_eq!(usage.exit_code(), 64);
        assert_eq!(StartError::NoListener.exit_code(), 1);
        let own = StartError::daemon(std::io::Error::other("table"));
        assert_eq!((own.exit_code(), own.to_string().as_str()), (1, "table"));
    }
}
