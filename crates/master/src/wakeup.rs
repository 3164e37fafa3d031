//! master.cf's wakeup column: when to poke a service, and the poke itself (a
//! `Trigger::Wakeup` frame on a fresh connection to its unix socket).

use rostfix_config::Wakeup;
use std::path::Path;
use std::time::{Duration, Instant};

/// The wake-up schedule of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeupTimer {
    interval: Duration,
    after_first_use: bool,
    used: bool,
    next: Option<Instant>,
}

impl WakeupTimer {
    /// A timer due immediately, or (for `N?`) only once the service has been used.
    pub fn new(wakeup: Wakeup, now: Instant) -> WakeupTimer {
        let mut timer = WakeupTimer {
            // A zero interval would spin; treat it as one second.
            interval: Duration::from_secs(u64::from(wakeup.seconds.max(1))),
            after_first_use: wakeup.after_first_use,
            used: false,
            next: None,
        };
        timer.restart(now);
        timer
    }

    /// After a reload: due immediately, unless it still waits for a first use.
    pub fn restart(&mut self, now: Instant) {
        self.next = if self.after_first_use && !self.used {
            None
        } else {
            Some(now)
        };
    }

    /// The service reported its first TAKEN: `N?` timers start counting.
    pub fn first_use(&mut self, now: Instant) {
        if !self.used {
            self.used = true;
            if self.next.is_none() {
                self.next = Some(now + self.interval);
            }
        }
    }

    /// Whether a wake-up is due now; if so, schedules the next one.
    pub fn fire_if_due(&mut self, now: Instant) -> bool {
        match self.next {
            Some(when) if when <= now => {
                self.next = Some(now + self.interval);
                true
            }
            _ => false,
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.next
    }
}

/// Connects to a unix socket without blocking and writes one `Trigger::Wakeup` frame.
/// The frame is a few bytes, far below the socket buffer, so the write does not block
/// even before the service accepts.
pub fn send_wakeup(path: &Path) -> std::io::Result<()> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    connect(fd.as_raw_fd(), &addr)?;
    let mut stream = std::os::unix::net::UnixStream::from(fd);
    rostfix_proto::write_message(&mut stream, &rostfix_proto::Trigger::Wakeup).map_err(
        |e| match e {
            rostfix_proto::FrameError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic() {
        let now = Instant::now();
        let mut t = WakeupTimer::new(
            Wakeup {
                seconds: 60,
                after_first_use: false,
            },
            now,
        );
        assert!(t.fire_if_due(now), "at start");
        assert!(!t.fire_if_due(now + Duration::from_secs(59)));
        assert!(t.fire_if_due(now + Duration::from_secs(60)));
        assert_eq!(t.next(), Some(now + Duration::from_secs(120)));
        t.restart(now + Duration::from_secs(61));
        assert!(
            t.fire_if_due(now + Duration::from_secs(61)),
            "again right after reload"
        );
    }

    #[test]
    fn after_first_use() {
        let now = Instant::now();
        let mut t = WakeupTimer::new(
            Wakeup {
                seconds: 10,
                after_first_use: true,
            },
            now,
        );
        assert_eq!(t.next(), None);
        assert!(!t.fire_if_due(now + Duration::from_secs(100)));
        t.first_use(now);
        assert!(!t.fire_if_due(now + Duration::from_secs(9)));
        assert!(t.fire_if_due(now + Duration::from_secs(10)));
        t.restart(now);
        assert!(t.fire_if_due(now), "once used, a reload wakes it at once");
    }

    #[test]
    fn wakeup_frame_arrives() {
        let dir = std::env::temp_dir().join(format!("master-wakeup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("svc");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        send_wakeup(&path).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let got: rostfix_proto::Trigger = rostfix_proto::read_message(&mut conn).unwrap();
        assert_eq!(got, rostfix_proto::Trigger::Wakeup);
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        assert!(send_wakeup(&path).is_err(), "nobody listening");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
