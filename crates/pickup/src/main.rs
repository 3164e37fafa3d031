//! pickup: the daemon that moves locally submitted mail from maildrop/ into incoming/
//! (master.cf `pickup unix n - y 60 1 pickup`: chroot, unprivileged, one process,
//! woken every 60 s). It waits for wake-ups on `public/pickup` (one bounded frame per
//! connection, 5 s to send it) and scans maildrop/ after each, and at least every 60 s;
//! it exits when master goes away.

#![forbid(unsafe_code)]

mod attrs;
mod envelope;
mod help;
mod process;
mod qualify;
mod scan;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use process::Settings;
use rostfix_service::Service;
use scan::Scanner;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

/// Longest pause between scans.
const SCAN_INTERVAL_MS: u16 = 60_000;
/// Time a client gets to send its trigger frame.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(5);
/// A trigger frame is a few bytes; anything longer is not one.
const MAX_TRIGGER: u64 = 4096;

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help") {
        print!("{}", help::HELP);
        return;
    }
    let mut service = match Service::init("pickup") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pickup: fatal: {e}");
            std::process::exit(1);
        }
    };
    let listeners: Vec<UnixListener> = service
        .take_listeners()
        .into_iter()
        .map(UnixListener::from)
        .collect();
    for l in &listeners {
        // Several wake-ups may be queued; accept must never block the scan loop.
        if let Err(e) = l.set_nonblocking(true) {
            log::warn!("listener set_nonblocking: {e}");
        }
    }
    // Load the time zone before the chroot hides /etc/localtime (glibc caches it).
    let _ = rostfix_maillog::date::local_offset(0);
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(1);
    }
    let mut scanner = Scanner::new(Settings {
        myhostname: service.config.get("myhostname"),
        myorigin: service.config.get("myorigin"),
        message_size_limit: u64::try_from(service.config.get_int("message_size_limit"))
            .unwrap_or(0),
    });

    loop {
        if !service.master_alive() {
            log::info!("master is gone; exiting");
            std::process::exit(0);
        }
        scanner.scan(Path::new("."), wake_qmgr);
        if wait_for_trigger(&service, &listeners) == Wait::MasterGone {
            std::process::exit(0);
        }
    }
}

/// Wakes qmgr for a message just queued.
fn wake_qmgr(_: &process::Queued) {
    if let Err(e) = rostfix_proto::send_trigger(
        Path::new("public/qmgr"),
        &rostfix_proto::Trigger::Wakeup,
        std::time::Duration::from_secs(2),
    ) {
        log::warn!("{e}");
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Wait {
    Scan,
    MasterGone,
}

/// Sleeps until a wake-up arrives, SCAN_INTERVAL_MS pass, or master goes away.
fn wait_for_trigger(service: &Service, listeners: &[UnixListener]) -> Wait {
    let mut fds: Vec<PollFd<'_>> = listeners
        .iter()
        .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
        .collect();
    let status = service.status_fd();
    // Requesting no events still reports POLLERR/POLLHUP: the pipe's reader (master) died.
    if let Some(fd) = status {
        fds.push(PollFd::new(fd, PollFlags::empty()));
    }
    match poll(&mut fds, PollTimeout::from(SCAN_INTERVAL_MS)) {
        Ok(0) => return Wait::Scan,
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Wait::Scan,
        Err(e) => {
            log::warn!("poll: {e}");
            std::thread::sleep(Duration::from_secs(1));
            return Wait::Scan;
        }
    }
    if status.is_some() {
        let gone = fds.last().and_then(PollFd::revents).is_some_and(|r| {
            r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL)
        });
        if gone {
            log::info!("master is gone; exiting");
            return Wait::MasterGone;
        }
    }
    for listener in listeners {
        drain_triggers(listener);
    }
    Wait::Scan
}

/// Accepts every pending wake-up connection and reads its one frame. Any frame means
/// "scan now"; what it says does not matter to pickup, so errors are only debug noise.
fn drain_triggers(listener: &UnixListener) {
    while let Ok((stream, _)) = listener.accept() {
        let read = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(TRIGGER_TIMEOUT)))
            .map_err(rostfix_proto::FrameError::Io)
            .and_then(|()| {
                rostfix_proto::read_message::<_, rostfix_proto::Trigger>(
                    &mut (&stream).take(MAX_TRIGGER),
                )
            });
        if let Err(e) = read {
            log::debug!("trigger: {e}");
        }
    }
}
