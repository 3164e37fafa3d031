//! The running master: services with their sockets and status pipes, the poll(2) event
//! loop, spawning, reaping, wake-ups, reload (SIGHUP) and shutdown (SIGTERM/SIGINT).

use crate::book::{Book, ExitHow, StatusEffect};
use crate::child_args::{child_argv, child_env};
use crate::error::io;
use crate::listen::{
    as_owner, open_all, remove_unix, resize_backlog, service_backlog, warn_if_capped, SocketOwner,
};
use crate::pidfile::PidFile;
use crate::plan::{make_plan, Endpoint, Plan, PlannedService};
use crate::settings::Settings;
use crate::spawn::SpawnSpec;
use crate::stress::{AtLimit, Stress};
use crate::wakeup::{send_wakeup, WakeupTimer};
use crate::MasterError;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rostfix_config::ineffective::setting_warnings;
use rostfix_config::{MainCf, MasterCf, ServiceType};
use rostfix_proto::{ChildStatus, STATUS_LEN};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Version string in the start and reload log lines.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long shutdown waits for children after SIGTERM before SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Status records read per read(2): a multiple of STATUS_LEN, so that reads of atomic
/// 9-byte writes stay aligned.
const STATUS_BATCH: usize = STATUS_LEN * 64;
/// Upper bound of one poll wait, so a clock jump never stalls timers for long.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// One service master runs.
struct Running {
    planned: PlannedService,
    listeners: Vec<OwnedFd>,
    /// Non-blocking read end of the status pipe (master keeps the write end too, so it
    /// never sees EOF; children see a broken pipe once the read end is closed).
    status_read: OwnedFd,
    status_write: OwnedFd,
    /// Bytes of an incomplete record (fewer than STATUS_LEN).
    pending: Vec<u8>,
    wakeup: Option<WakeupTimer>,
    /// Stress mode (inet services only).
    stress: Stress,
}

/// The signals master handles through its signalfd.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
    ] {
        set.add(signal);
    }
    set
}

/// A fresh status pipe: (read end non-blocking, write end), both close-on-exec.
fn status_pipe() -> Result<(OwnedFd, OwnedFd), MasterError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| MasterError::sys("pipe", io(e)))?;
    let flags = nix::fcntl::fcntl(read.as_fd(), nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| MasterError::sys("fcntl", io(e)))?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(read.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
        .map_err(|e| MasterError::sys("fcntl", io(e)))?;
    Ok((read, write))
}

/// Loads main.cf and master.cf and plans the services. The warnings are main.cf's
/// unused parameters, then the settings of main.cf and master.cf `-o` that have no
/// effect in Rostfix (logged at start and at each reload, so a setting that does
/// nothing never passes in silence).
fn load(config_dir: &Path, cwd: &Path) -> Result<(Vec<String>, Settings, Plan), MasterError> {
    let main = MainCf::load(config_dir)?;
    let settings = Settings::from_main(&main, cwd)?;
    let master = MasterCf::load(config_dir, settings.default_process_limit)?;
    let plan = make_plan(&master, &settings.plan, &|path| path.is_file())?;
    let mut warnings = rostfix_config::unused::warnings(&main, Some(&master));
    warnings.extend(setting_warnings(&main, Some(&master)));
    Ok((warnings, settings, plan))
}

/// The master process once set up.
pub struct Master {
    config_dir: PathBuf,
    cwd: PathBuf,
    settings: Settings,
    owner: Option<SocketOwner>,
    services: Vec<Running>,
    book: Book,
    signals: SignalFd,
    pidfile: Option<PidFile>,
}

/// What the event loop saw ready.
#[derive(Debug, Clone, Copy)]
enum Source {
    Signals,
    Status(usize),
    Listener(usize),
}

impl Master {
    /// Everything before readiness: config, logging, pid lock, signals, sockets.
    pub fn start(config_dir: &Path, verbose: bool) -> Result<Master, MasterError> {
        // Block the signals first: from the moment the pid lock says "running", a
        // SIGHUP or SIGTERM must be queued for the event loop, not kill us half set up.
        let mask = handled_signals();
        mask.thread_block()
            .map_err(|e| MasterError::sys("sigprocmask", io(e)))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| MasterError::sys("signalfd", io(e)))?;
        let cwd = std::env::current_dir().map_err(|e| MasterError::sys("getcwd", e))?;
        let main = MainCf::load(config_dir)?;
        let target = rostfix_maillog::target_for(
            &main.get("maillog_file"),
            &main.get("rostfix_maillog_format"),
        )?;
        rostfix_maillog::init(
            &main.get("syslog_name"),
            "master",
            &main.get("myhostname"),
            target,
            verbose,
        )?;
        // Sockets and the pid file get predictable modes whatever umask we inherited.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));

        let (warnings, settings, plan) = load(config_dir, &cwd)?;
        for warning in &warnings {
            log::warn!("{warning}");
        }
        let pid_dir = settings.plan.queue_directory.join("pid");
        if !pid_dir.is_dir() {
            std::fs::create_dir_all(&pid_dir)
                .map_err(|e| MasterError::sys(pid_dir.display().to_string(), e))?;
        }
        let pidfile = PidFile::lock(&settings.pid_file())?;
        for skipped in &plan.skipped {
            log::warn!("{skipped}");
        }
        let owner = settings.socket_owner()?;

        let mut master = Master {
            config_dir: config_dir.to_path_buf(),
            cwd,
            settings,
            owner,
            services: Vec::new(),
            book: Book::new(1),
            signals,
            pidfile: Some(pidfile),
        };
        let now = Instant::now();
        for planned in plan.services {
            match master.open_service(planned, now) {
                Ok(running) => master.services.push(running),
                Err(e) => {
                    master.close_all();
                    return Err(e);
                }
            }
        }
        log::info!(
            "daemon started -- version {VERSION}, configuration {}",
            config_dir.display()
        );
        if !nix::unistd::geteuid().is_root() {
            log::warn!(
                "not running as root: services run as uid {} without chroot",
                nix::unistd::geteuid().as_raw()
            );
        }
        Ok(master)
    }

    /// The listen backlog of a service (warned about when the kernel caps it).
    fn backlog_of(&self, planned: &PlannedService) -> i32 {
        let backlog = service_backlog(
            planned.entry.maxproc,
            self.settings.default_process_limit,
            planned.entry.service_type == ServiceType::Inet,
            crate::listen::somaxconn(),
        );
        warn_if_capped(&planned.key.to_string(), backlog);
        backlog
    }

    /// Sockets, status pipe, counters and wake-up timer of a new service.
    fn open_service(
        &mut self,
        planned: PlannedService,
        now: Instant,
    ) -> Result<Running, MasterError> {
        let backlog = self.backlog_of(&planned);
        let listeners = open_all(
            &planned.endpoints,
            !planned.entry.private,
            self.owner,
            backlog,
        )?;
        let (status_read, status_write) = status_pipe()?;
        self.book.set_service(&planned.key, planned.entry.maxproc);
        let wakeup = match (planned.entry.service_type, planned.entry.wakeup) {
            (ServiceType::Unix, Some(wakeup)) => Some(WakeupTimer::new(wakeup, now)),
            _ => None,
        };
        log::debug!(
            "service {} listening on {} socket(s)",
            planned.key,
            listeners.len()
        );
        Ok(Running {
            planned,
            listeners,
            status_read,
            status_write,
            pending: Vec::new(),
            wakeup,
            stress: Stress::default(),
        })
    }

    /// The event loop; returns the exit status after SIGTERM/SIGINT.
    pub fn run(mut self) -> i32 {
        loop {
            let now = Instant::now();
            self.send_due_wakeups(now);
            let timeout = self.poll_timeout(now);
            let mut sources = vec![Source::Signals];
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            for (index, running) in self.services.iter().enumerate() {
                sources.push(Source::Status(index));
                fds.push(PollFd::new(running.status_read.as_fd(), PollFlags::POLLIN));
                if self.book.may_listen(&running.planned.key, now) {
                    for listener in &running.listeners {
                        sources.push(Source::Listener(index));
                        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                    }
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("poll: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
            let ready: Vec<Source> = sources
                .iter()
                .zip(fds.iter())
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(source, _)| *source)
                .collect();
            drop(fds);
            let mut signals_ready = false;
            let mut spawn_for: Vec<usize> = Vec::new();
            for source in ready {
                match source {
                    Source::Signals => signals_ready = true,
                    Source::Status(index) => {
                        self.read_status(index);
                        self.check_stress(index);
                    }
                    Source::Listener(index) => {
                        if !spawn_for.contains(&index) {
                            spawn_for.push(index);
                        }
                    }
                }
            }
            let now = Instant::now();
            for index in spawn_for {
                // A status record read just now may have made a child idle again.
                if self.book.may_listen(&self.services[index].planned.key, now) {
                    self.spawn(index, now);
                }
            }
            // Signals last: a reload renumbers the services.
            if signals_ready {
                if let Some(signal) = self.handle_signals() {
                    return self.shutdown(signal);
                }
            }
        }
    }

    fn poll_timeout(&mut self, now: Instant) -> PollTimeout {
        let mut next = self.book.next_throttle_end(now);
        for running in &self.services {
            if let Some(when) = running.wakeup.as_ref().and_then(WakeupTimer::next) {
                next = Some(next.map_or(when, |n| n.min(when)));
            }
        }
        let wait = next.map_or(MAX_WAIT, |when| {
            when.saturating_duration_since(now).min(MAX_WAIT)
        });
        // Round up so that a timer due in 0.4 ms does not become a busy loop.
        let millis = wait.as_millis().saturating_add(1);
        PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
    }

    fn send_due_wakeups(&mut self, now: Instant) {
        for running in &mut self.services {
            let Some(timer) = running.wakeup.as_mut() else {
                continue;
            };
            if !timer.fire_if_due(now) {
                continue;
            }
            for endpoint in &running.planned.endpoints {
                if let Endpoint::Unix(path) = endpoint {
                    // connect(2) follows a symbolic link planted in public/ or
                    // private/: only as their owner.
                    match as_owner(self.owner, || Ok(send_wakeup(path))) {
                        Ok(Ok(())) => log::debug!("wakeup sent to {}", path.display()),
                        Ok(Err(e)) => log::debug!("wakeup {}: {e}", path.display()),
                        Err(e) => log::warn!("wakeup {}: {e}", path.display()),
                    }
                }
            }
        }
    }

    /// Drains a status pipe and applies every complete record.
    fn read_status(&mut self, index: usize) {
        let now = Instant::now();
        let mut buf = [0u8; STATUS_BATCH];
        loop {
            let running = &mut self.services[index];
            let got = match nix::unistd::read(running.status_read.as_fd(), &mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(e) => {
                    log::warn!("read status pipe of {}: {e}", running.planned.key);
                    return;
                }
            };
            running.pending.extend_from_slice(&buf[..got]);
            let whole = running.pending.len() - running.pending.len() % STATUS_LEN;
            let records: Vec<u8> = running.pending.drain(..whole).collect();
            let key = running.planned.key.clone();
            for chunk in records.chunks_exact(STATUS_LEN) {
                let mut record = [0u8; STATUS_LEN];
                record.copy_from_slice(chunk);
                let Some(status) = ChildStatus::decode(&record) else {
                    log::warn!("{key}: bad status record from a child; ignored");
                    continue;
                };
                if let StatusEffect::FirstUse(_) = self.book.status(&key, status) {
                    if let Some(timer) = self.services[index].wakeup.as_mut() {
                        timer.first_use(now);
                    }
                }
            }
            if got < buf.len() {
                return;
            }
        }
    }

    /// Enters stress mode when an inet service has just reached its process limit,
    /// as Postfix's master does (see stress.rs).
    fn check_stress(&mut self, index: usize) {
        let now = Instant::now();
        let running = &mut self.services[index];
        let key = running.planned.key.clone();
        // Postfix gives stress mode only to services that may run more than one
        // process: a single-process service (postscreen, maxproc 1) is "at its limit"
        // as soon as it takes a client, and restarting it would gain nothing.
        if running.planned.entry.service_type != ServiceType::Inet
            || running.planned.entry.maxproc <= 1
            || !self.book.at_limit(&key)
        {
            return;
        }
        if running.stress.at_limit(now) == AtLimit::Extend {
            return;
        }
        log::warn!(
            "service \"{key}\" has reached its process limit \"{}\": new clients may \
             experience noticeable delays",
            running.planned.entry.maxproc
        );
        // A fresh status pipe, as for a reload: the busy children finish their clients
        // and exit; new ones run under stress.
        let (status_read, status_write) = match status_pipe() {
            Ok(pipe) => pipe,
            Err(e) => {
                log::warn!("{key}: cannot enter stress mode: {e}");
                return;
            }
        };
        running.status_read = status_read;
        running.status_write = status_write;
        running.pending.clear();
        self.book.restart_service(&key);
        log::info!("service {key}: restarted in stress mode (-o stress=yes)");
    }

    fn spawn(&mut self, index: usize, now: Instant) {
        let stress = self.services[index].stress.active(now);
        let running = &self.services[index];
        let planned = &running.planned;
        let argv = child_argv(planned, stress);
        let env = child_env(
            &self.settings.import_environment,
            &|name| std::env::var(name).ok(),
            &self.config_dir,
            self.book.generation,
            running.listeners.len(),
        );
        let listeners: Vec<i32> = running.listeners.iter().map(|fd| fd.as_raw_fd()).collect();
        let spawned = SpawnSpec::new(
            &planned.program,
            &argv,
            &env,
            running.status_write.as_raw_fd(),
            &listeners,
        )
        .and_then(|spec| spec.spawn());
        match spawned {
            Ok(pid) => {
                log::debug!(
                    "spawned {} pid {pid} for {}",
                    planned.program.display(),
                    planned.key
                );
                let (key, program) = (planned.key.clone(), planned.program.clone());
                self.book.spawned(&key, pid, program);
            }
            Err(e) => {
                log::warn!("{}: {e} -- throttling", planned.program.display());
                let key = planned.key.clone();
                self.book.throttle(&key, now + self.settings.throttle_time);
            }
        }
    }

    /// Reads every pending signal; returns the terminating one, if any.
    fn handle_signals(&mut self) -> Option<i32> {
        let mut reap = false;
        let mut reload = false;
        let mut terminate = None;
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => reap = true,
                    Ok(Signal::SIGHUP) => reload = true,
                    Ok(signal @ (Signal::SIGTERM | Signal::SIGINT)) => {
                        terminate = Some(signal as i32)
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log::warn!("read signalfd: {e}");
                    break;
                }
            }
        }
        if reap {
            self.reap();
        }
        if terminate.is_some() {
            return terminate;
        }
        if reload {
            self.reload();
        }
        None
    }

    /// Collects every exited child.
    fn reap(&mut self) {
        loop {
            let (pid, how) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitHow::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, ExitHow::Signal(signal as i32)),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return, // ECHILD: nobody left
            };
            if let Some(report) = self.book.exited(
                pid.as_raw(),
                how,
                Instant::now(),
                self.settings.throttle_time,
            ) {
                for warning in &report.warnings {
                    log::warn!("{warning}");
                }
            }
        }
    }

    /// SIGHUP: re-read the configuration; on error keep the old one.
    fn reload(&mut self) {
        let (warnings, settings, plan) = match load(&self.config_dir, &self.cwd) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        let owner = match settings.socket_owner() {
            Ok(owner) => owner,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        for warning in warnings.iter().chain(&plan.skipped) {
            log::warn!("{warning}");
        }
        self.settings = settings;
        self.owner = owner;
        self.book.new_generation();
        let now = Instant::now();
        let mut old: Vec<Running> = std::mem::take(&mut self.services);
        for planned in plan.services {
            let kept = old
                .iter()
                .position(|r| r.planned.key == planned.key)
                .map(|i| old.swap_remove(i));
            let result = match kept {
                Some(running) => self.renew_service(running, planned, now),
                None => self.open_service(planned, now),
            };
            match result {
                Ok(running) => self.services.push(running),
                Err(e) => log::error!("{e}"),
            }
        }
        for running in old {
            self.remove_service(running);
        }
        log::info!(
            "reload -- version {VERSION}, configuration {}",
            self.config_dir.display()
        );
    }

    /// A service that survives a reload: a fresh status pipe (old children drain and
    /// exit), the same sockets unless its endpoints changed, the new entry.
    fn renew_service(
        &mut self,
        mut running: Running,
        planned: PlannedService,
        now: Instant,
    ) -> Result<Running, MasterError> {
        let visibility_changed = running.planned.entry.private != planned.entry.private;
        if running.planned.endpoints != planned.endpoints || visibility_changed {
            let listeners = std::mem::take(&mut running.listeners);
            drop(listeners);
            remove_unix(&running.planned.endpoints, self.owner);
            let backlog = self.backlog_of(&planned);
            running.listeners = open_all(
                &planned.endpoints,
                !planned.entry.private,
                self.owner,
                backlog,
            )?;
        } else {
            resize_backlog(&running.listeners, self.backlog_of(&planned))?;
        }
        let (status_read, status_write) = status_pipe()?;
        running.status_read = status_read;
        running.status_write = status_write;
        running.pending.clear();
        self.book.set_service(&planned.key, planned.entry.maxproc);
        running.wakeup = match (
            planned.entry.service_type,
            planned.entry.wakeup,
            running.wakeup.take(),
        ) {
            (ServiceType::Unix, Some(wakeup), Some(mut timer))
                if running.planned.entry.wakeup == Some(wakeup) =>
            {
                timer.restart(now);
                Some(timer)
            }
            (ServiceType::Unix, Some(wakeup), _) => Some(WakeupTimer::new(wakeup, now)),
            _ => None,
        };
        running.planned = planned;
        Ok(running)
    }

    /// A service gone from master.cf: close and remove its sockets, stop its children.
    fn remove_service(&mut self, running: Running) {
        let key = running.planned.key.clone();
        let endpoints = running.planned.endpoints.clone();
        drop(running);
        remove_unix(&endpoints, self.owner);
        for pid in self.book.remove_service(&key) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        log::info!("service {key} removed");
    }

    /// Closes every service's sockets and removes the unix ones.
    fn close_all(&mut self) {
        for running in std::mem::take(&mut self.services) {
            let endpoints = running.planned.endpoints.clone();
            drop(running);
            remove_unix(&endpoints, self.owner);
        }
    }

    /// SIGTERM/SIGINT: stop every child (SIGKILL after a grace period), clean up.
    fn shutdown(mut self, signal: i32) -> i32 {
        log::info!("terminating on signal {signal}");
        // No new children: close the listeners first.
        self.close_all();
        self.book.terminate_all();
        for pid in self.book.live_pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.book.live_pids().is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = PollTimeout::try_from(deadline - now).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, wait);
            while let Ok(Some(_)) = self.signals.read_signal() {}
            self.reap();
        }
        for pid in self.book.live_pids() {
            log::warn!(
                "pid {pid} did not stop in {}s; killing it",
                SHUTDOWN_GRACE.as_secs()
            );
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            let _ = self
                .book
                .exited(pid, ExitHow::Signal(9), Instant::now(), Duration::ZERO);
        }
        if let Some(pidfile) = self.pidfile.take() {
            pidfile.remove();
        }
        0
    }
}
