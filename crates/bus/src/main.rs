//! bus: the daemon that takes mail from a message bus subscription into the queue
//! (master.cf `bus unix - - y 10 1 bus`: chroot, unprivileged, one process). It runs in
//! the service skeleton's event shape: its own pull loop on the main thread, master's
//! wake-ups (which only keep it started) read and ignored on a thread. It exits when
//! master goes away or a reload retires it; the next process waits for the dedup
//! store's lock, recovers what a crash left in `bus/`, and pulls on.

#![forbid(unsafe_code)]

mod help;

use rostfix_bus::dedup::{DedupError, DedupStore};
use rostfix_bus::http::{Client, Endpoint};
use rostfix_bus::intake::{Intake, Limits, Step};
use rostfix_bus::pubsub::{valid_subscription, PubSub, TokenFile};
use rostfix_service::{Daemon, Service, Shape, StartError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the configuration cannot work.
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("rostfix_bus_type = {0}: only pubsub is supported")]
    Type(String),
    #[error("rostfix_pubsub_subscription = {0}: not projects/PROJECT/subscriptions/NAME")]
    Subscription(String),
    #[error("rostfix_pubsub_endpoint: {0}")]
    Endpoint(#[from] rostfix_bus::http::HttpError),
    #[error("rostfix_pubsub_token_file: {0}")]
    Token(#[from] rostfix_bus::source::BusError),
}

/// Longest pause when the bus keeps failing.
const MAX_TROUBLE_PAUSE: Duration = Duration::from_secs(60);
/// Pause while pickup works through `maildrop/`.
const BACKLOG_PAUSE: Duration = Duration::from_millis(200);
/// Pause while the queue file system is short of space.
const SPACE_PAUSE: Duration = Duration::from_secs(10);

/// Everything the loop needs, made before confinement (the endpoint's addresses, the
/// token's directory, the CA roots are outside the chroot).
struct Loaded {
    bus: PubSub,
    limits: Limits,
    dedup_secs: u64,
    poll: Duration,
}

fn load(service: &Service) -> Result<Option<Loaded>, ConfigError> {
    let cf = &service.config;
    let kind = cf.get("rostfix_bus_type");
    if kind != "pubsub" {
        return Err(ConfigError::Type(kind));
    }
    let subscription = cf.get("rostfix_pubsub_subscription");
    if subscription.is_empty() {
        return Ok(None);
    }
    if !valid_subscription(&subscription) {
        return Err(ConfigError::Subscription(subscription));
    }
    let endpoint = Endpoint::parse(&cf.get("rostfix_pubsub_endpoint"))?;
    let client = Client::new(endpoint, None, cf.get_time("rostfix_bus_timeout"))?;
    let token_path = cf.get("rostfix_pubsub_token_file");
    let token = if token_path.is_empty() {
        None
    } else {
        Some(TokenFile::open(&token_path)?)
    };
    let size_limit = cf.get_u64("message_size_limit");
    let max_outstanding = usize::try_from(cf.get_u64("rostfix_bus_max_outstanding"))
        .unwrap_or(usize::MAX)
        .max(1);
    // A pull answer holds at most a batch of messages of the largest size, base64
    // (4/3) plus JSON; capped so a misbehaving server cannot make us hold more.
    let per_message = if size_limit == 0 {
        10 << 20
    } else {
        size_limit
    };
    let batch = max_outstanding.min(rostfix_bus::pubsub::MAX_PULL) as u64;
    let max_answer = (batch.saturating_mul(per_message / 3 * 4 + 16 * 1024)).min(512 << 20);
    Ok(Some(Loaded {
        bus: PubSub::new(
            client,
            subscription,
            token,
            usize::try_from(max_answer).unwrap_or(usize::MAX),
        ),
        limits: Limits {
            max_outstanding,
            size_limit,
            queue_minfree: cf.get_u64("queue_minfree"),
        },
        dedup_secs: cf.get_time("rostfix_bus_dedup_time").as_secs(),
        poll: cf.get_time("rostfix_bus_poll_interval"),
    }))
}

/// Sleeps `pause` in short steps; false if master went away meanwhile.
fn pause(service: &Service, pause: Duration) -> bool {
    let until = Instant::now() + pause;
    loop {
        if !service.master_alive() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(500)));
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The pull loop, until master goes away. Returns the exit status.
fn run_intake(service: &Service, loaded: Loaded) -> i32 {
    let staging = PathBuf::from(rostfix_queue::QueueName::Bus.as_str());
    // A bus left running by a killed master may still hold the store: wait for it.
    let mut said = false;
    let store = loop {
        match DedupStore::open(&staging, loaded.dedup_secs, now_secs()) {
            Ok(s) => break s,
            Err(DedupError::Busy(_)) => {
                if !said {
                    log::info!("another bus intake still runs; waiting for it to exit");
                    said = true;
                }
                if !pause(service, Duration::from_secs(1)) {
                    return 0;
                }
            }
            Err(e) => {
                rostfix_maillog::fatal!("{e}");
                return 1;
            }
        }
    };
    log::info!(
        "pulling from {} ({} ids remembered)",
        loaded.bus.subscription(),
        store.len()
    );
    let uid = nix::unistd::geteuid().as_raw();
    let mut intake = Intake::new(PathBuf::from("."), loaded.bus, store, loaded.limits, uid);
    if let Err(e) = intake.recover() {
        rostfix_maillog::fatal!("recovery of bus/: {e}");
        return 1;
    }
    let mut trouble_pause = Duration::from_secs(1);
    let mut space_warned: Option<Instant> = None;
    while service.master_alive() {
        let step = match intake.step() {
            Ok(s) => s,
            Err(e) => {
                // Nothing acknowledged is lost: the next process recovers bus/.
                rostfix_maillog::fatal!("{e}");
                return 1;
            }
        };
        if !matches!(step, Step::BusTrouble(_)) {
            trouble_pause = Duration::from_secs(1);
        }
        let wait = match step {
            Step::Batch { .. } => Duration::ZERO,
            // Pulls answer at once (pubsub.rs says why): the pause is ours.
            Step::Empty => loaded.poll,
            Step::Backlog(_) => BACKLOG_PAUSE,
            Step::NoSpace(why) => {
                if space_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    log::warn!("{why}; not pulling from the bus for now");
                    space_warned = Some(Instant::now());
                }
                SPACE_PAUSE
            }
            Step::BusTrouble(why) => {
                log::warn!("pubsub: {why}; retrying in {}s", trouble_pause.as_secs());
                let p = trouble_pause;
                trouble_pause = (trouble_pause * 2).min(MAX_TROUBLE_PAUSE);
                p
            }
        };
        if !wait.is_zero() && !pause(service, wait) {
            break;
        }
    }
    0
}

fn main() {
    rostfix_service::run(Daemon {
        program: "bus",
        help: help::HELP,
        before_confine: |service: &mut Service| {
            // Load the time zone before the chroot hides /etc/localtime (glibc caches it).
            let _ = rostfix_maillog::date::local_offset(0);
            load(service).map_err(StartError::daemon)
        },
        after_confine: |_: &mut Service, loaded: Option<Loaded>| {
            Ok(Shape::Event {
                // master's wake-ups only keep the service started.
                on_trigger: Arc::new(|_| {}),
                main_loop: Box::new(move |service: &Service| {
                    let status = match loaded {
                        Some(l) => run_intake(service, l),
                        None => {
                            log::info!(
                                "no rostfix_pubsub_subscription configured: idle until master stops"
                            );
                            while pause(service, Duration::from_secs(60)) {}
                            0
                        }
                    };
                    std::process::exit(status);
                }),
            })
        },
    })
}
