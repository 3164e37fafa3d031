//! Process bookkeeping, free of system calls: per-service counters (total, idle,
//! throttle), the children by pid, and what status records and exits do to them.

use crate::plan::ServiceKey;
use rostfix_proto::{ChildStatus, StatusKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Per-service counters of the current generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: u32,
    pub idle: u32,
    /// 0 = unlimited.
    pub maxproc: u32,
    pub throttled_until: Option<Instant>,
}

impl Counters {
    /// Whether master should watch the service's listeners: nobody idle to take a
    /// connection, room for another process, and not throttled.
    pub fn may_listen(&self, now: Instant) -> bool {
        self.idle == 0
            && (self.maxproc == 0 || self.total < self.maxproc)
            && self.throttled_until.is_none_or(|until| now >= until)
    }
}

/// One live child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRecord {
    pub key: ServiceKey,
    pub program: PathBuf,
    pub generation: u32,
    /// Counted in its service's idle counter.
    pub idle: bool,
    /// Reported TAKEN at least once.
    pub taken: bool,
    /// Belongs to the current generation's counters (false after a reload).
    pub counted: bool,
    /// master sent it SIGTERM on purpose (service removed): its death is not news.
    pub terminated: bool,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitHow {
    Code(i32),
    Signal(i32),
}

/// What an exit means for the log and the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    pub record: ChildRecord,
    /// The warnings to log (without `warning: `), in order.
    pub warnings: Vec<String>,
    pub throttled: bool,
}

/// What a status record changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusEffect {
    Ignored,
    Updated,
    /// The service's first TAKEN ever (starts `N?` wakeups).
    FirstUse(ServiceKey),
}

/// All of master's process bookkeeping.
#[derive(Debug, Default)]
pub struct Book {
    pub generation: u32,
    services: HashMap<ServiceKey, Counters>,
    children: HashMap<i32, ChildRecord>,
    used: std::collections::HashSet<ServiceKey>,
}

impl Book {
    pub fn new(generation: u32) -> Book {
        Book {
            generation,
            ..Book::default()
        }
    }

    /// Adds a service or updates its process limit (reload).
    pub fn set_service(&mut self, key: &ServiceKey, maxproc: u32) {
        self.services.entry(key.clone()).or_default().maxproc = maxproc;
    }

    /// Forgets a service; returns the pids of its children (any generation), now marked
    /// as deliberately terminated, for the caller to SIGTERM.
    pub fn remove_service(&mut self, key: &ServiceKey) -> Vec<i32> {
        self.services.remove(key);
        self.used.remove(key);
        let mut pids = Vec::new();
        for (pid, record) in self.children.iter_mut() {
            if &record.key == key {
                record.terminated = true;
                record.counted = false;
                pids.push(*pid);
            }
        }
        pids.sort_unstable();
        pids
    }

    #[cfg(test)]
    pub fn counters(&self, key: &ServiceKey) -> Option<&Counters> {
        self.services.get(key)
    }

    pub fn may_listen(&self, key: &ServiceKey, now: Instant) -> bool {
        self.services.get(key).is_some_and(|c| c.may_listen(now))
    }

    /// Throttles a service (fork failure, bad startup) until `until`.
    pub fn throttle(&mut self, key: &ServiceKey, until: Instant) {
        if let Some(counters) = self.services.get_mut(key) {
            counters.throttled_until = Some(until);
        }
    }

    /// The earliest future end of a throttle, for the poll timeout; expired ones are
    /// cleared.
    pub fn next_throttle_end(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for counters in self.services.values_mut() {
            match counters.throttled_until {
                Some(until) if until <= now => counters.throttled_until = None,
                Some(until) => next = Some(next.map_or(until, |n| n.min(until))),
                None => {}
            }
        }
        next
    }

    /// A child was forked: it counts as idle until it reports TAKEN.
    pub fn spawned(&mut self, key: &ServiceKey, pid: i32, program: PathBuf) {
        if let Some(counters) = self.services.get_mut(key) {
            counters.total += 1;
            counters.idle += 1;
        }
        self.children.insert(
            pid,
            ChildRecord {
                key: key.clone(),
                program,
                generation: self.generation,
                idle: true,
                taken: false,
                counted: true,
                terminated: false,
            },
        );
    }

    /// A record read from `key`'s status pipe. Records of other generations, unknown
    /// pids, or children of another service are ignored.
    pub fn status(&mut self, key: &ServiceKey, status: ChildStatus) -> StatusEffect {
        if status.generation != self.generation {
            return StatusEffect::Ignored;
        }
        let Some(record) = self.children.get_mut(&status.pid) else {
            return StatusEffect::Ignored;
        };
        if &record.key != key || !record.counted {
            return StatusEffect::Ignored;
        }
        let Some(counters) = self.services.get_mut(key) else {
            return StatusEffect::Ignored;
        };
        match status.kind {
            StatusKind::Taken => {
                record.taken = true;
                if record.idle {
                    record.idle = false;
                    counters.idle = counters.idle.saturating_sub(1);
                }
                if self.used.insert(key.clone()) {
                    return StatusEffect::FirstUse(key.clone());
                }
            }
            StatusKind::Avail => {
                if !record.idle {
                    record.idle = true;
                    counters.idle += 1;
                }
            }
        }
        StatusEffect::Updated
    }

    /// A child was reaped. Unknown pids give None. A child that never served a client
    /// and ended abnormally throttles its service until `now + throttle_time`.
    pub fn exited(
        &mut self,
        pid: i32,
        how: ExitHow,
        now: Instant,
        throttle_time: Duration,
    ) -> Option<ExitReport> {
        let record = self.children.remove(&pid)?;
        let mut warnings = Vec::new();
        let abnormal = how != ExitHow::Code(0);
        if !record.terminated {
            match how {
                ExitHow::Code(0) => {}
                ExitHow::Code(code) => warnings.push(format!(
                    "process {} pid {pid} exit status {code}",
                    record.program.display()
                )),
                ExitHow::Signal(signal) => warnings.push(format!(
                    "process {} pid {pid} killed by signal {signal}",
                    record.program.display()
                )),
            }
        }
        let mut throttled = false;
        if record.counted {
            if let Some(counters) = self.services.get_mut(&record.key) {
                counters.total = counters.total.saturating_sub(1);
                if record.idle {
                    counters.idle = counters.idle.saturating_sub(1);
                }
                if abnormal && !record.taken {
                    counters.throttled_until = Some(now + throttle_time);
                    throttled = true;
                    warnings.push(format!(
                        "{}: bad command startup -- throttling",
                        record.program.display()
                    ));
                }
            }
        }
        Some(ExitReport {
            record,
            warnings,
            throttled,
        })
    }

    /// Whether every process of `key` is busy and no more may be started.
    pub fn at_limit(&self, key: &ServiceKey) -> bool {
        self.services
            .get(key)
            .is_some_and(|c| c.maxproc > 0 && c.idle == 0 && c.total >= c.maxproc)
    }

    /// Restarts one service (stress mode): its children stop counting, as after a
    /// reload, and drain on their broken status pipe; new ones may be started.
    pub fn restart_service(&mut self, key: &ServiceKey) {
        for record in self.children.values_mut() {
            if &record.key == key {
                record.counted = false;
            }
        }
        if let Some(counters) = self.services.get_mut(key) {
            counters.total = 0;
            counters.idle = 0;
        }
    }

    /// SIGHUP: a new generation. Every existing child is forgotten for counting (it
    /// drains on its broken status pipe) but stays known, to be reaped and logged.
    pub fn new_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        for record in self.children.values_mut() {
            record.counted = false;
        }
        for counters in self.services.values_mut() {
            counters.total = 0;
            counters.idle = 0;
        }
    }

    /// Every child still alive (any generation).
    pub fn live_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.children.keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// Marks every child as deliberately terminated (shutdown): no exit warnings.
    pub fn terminate_all(&mut self) {
        for record in self.children.values_mut() {
            record.terminated = true;
            record.counted = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_config::ServiceType;

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            name: name.to_string(),
            service_type: ServiceType::Unix,
        }
    }

    fn st(pid: i32, generation: u32, kind: StatusKind) -> ChildStatus {
        ChildStatus {
            pid,
            generation,
            kind,
        }
    }

    const THROTTLE: Duration = Duration::from_secs(60);

    #[test]
    fn at_limit_then_restart_makes_room_and_ignores_the_old_children() {
        let now = Instant::now();
        let mut book = Book::new(1);
        let k = key("smtp");
        book.set_service(&k, 2);
        book.spawned(&k, 10, PathBuf::from("smtpd"));
        book.status(&k, st(10, 1, StatusKind::Taken));
        assert!(!book.at_limit(&k));
        book.spawned(&k, 11, PathBuf::from("smtpd"));
        assert!(!book.at_limit(&k), "one is still idle");
        book.status(&k, st(11, 1, StatusKind::Taken));
        assert!(book.at_limit(&k));
        assert!(!book.may_listen(&k, now));
        book.restart_service(&k);
        assert!(!book.at_limit(&k));
        assert!(book.may_listen(&k, now));
        // The old children's records and exits no longer move the counters.
        assert_eq!(
            book.status(&k, st(10, 1, StatusKind::Avail)),
            StatusEffect::Ignored
        );
        book.spawned(&k, 12, PathBuf::from("smtpd"));
        book.exited(10, ExitHow::Code(0), now, THROTTLE);
        assert_eq!(book.counters(&k).map(|c| (c.total, c.idle)), Some((1, 1)));
    }

    #[test]
    fn listen_only_when_no_idle_and_below_limit() {
        let now = Instant::now();
        let mut book = Book::new(1);
        let k = key("smtp");
        book.set_service(&k, 2);
        assert!(book.may_listen(&k, now));
        book.spawned(&k, 10, "/d/smtp".into());
        assert_eq!(book.counters(&k).map(|c| (c.total, c.idle)), Some((1, 1)));
        assert!(
            !book.may_listen(&k, now),
            "an idle child takes the next connection"
        );
        assert_eq!(
            book.status(&k, st(10, 1, StatusKind::Taken)),
            StatusEffect::FirstUse(k.clone())
        );
        assert!(book.may_listen(&k, now));
        book.spawned(&k, 11, "/d/smtp".into());
        assert_eq!(
            book.status(&k, st(11, 1, StatusKind::Taken)),
            StatusEffect::Updated
        );
        assert!(!book.may_listen(&k, now), "at maxproc");
        assert_eq!(
            book.status(&k, st(10, 1, StatusKind::Avail)),
            StatusEffect::Updated
        );
        assert_eq!(book.counters(&k).map(|c| (c.total, c.idle)), Some((2, 1)));
        // Repeated AVAIL does not count twice.
        book.status(&k, st(10, 1, StatusKind::Avail));
        assert_eq!(book.counters(&k).map(|c| c.idle), Some(1));
    }

    #[test]
    fn unlimited_maxproc() {
        let now = Instant::now();
        let mut book = Book::new(1);
        let k = key("bounce");
        book.set_service(&k, 0);
        for pid in 1..50 {
            book.spawned(&k, pid, "/d/bounce".into());
            book.status(&k, st(pid, 1, StatusKind::Taken));
            assert!(book.may_listen(&k, now));
        }
    }

    #[test]
    fn stale_and_foreign_records_are_ignored() {
        let mut book = Book::new(4);
        let (a, b) = (key("a"), key("b"));
        book.set_service(&a, 10);
        book.set_service(&b, 10);
        book.spawned(&a, 7, "/d/a".into());
        assert_eq!(
            book.status(&a, st(7, 3, StatusKind::Taken)),
            StatusEffect::Ignored
        );
        assert_eq!(
            book.status(&a, st(8, 4, StatusKind::Taken)),
            StatusEffect::Ignored
        );
        assert_eq!(
            book.status(&b, st(7, 4, StatusKind::Taken)),
            StatusEffect::Ignored
        );
        assert_eq!(book.counters(&a).map(|c| c.idle), Some(1));
    }

    #[test]
    fn exit_bookkeeping_and_throttle() {
        let now = Instant::now();
        let mut book = Book::new(1);
        let k = key("smtp");
        book.set_service(&k, 10);
        book.spawned(&k, 1, "/d/smtpd".into());
        book.spawned(&k, 2, "/d/smtpd".into());
        book.status(&k, st(2, 1, StatusKind::Taken));
        // A served child killed later: logged, no throttle.
        let report = book.exited(2, ExitHow::Signal(9), now, THROTTLE).unwrap();
        assert_eq!(
            report.warnings,
            ["process /d/smtpd pid 2 killed by signal 9"]
        );
        assert!(!report.throttled);
        assert_eq!(book.counters(&k).map(|c| (c.total, c.idle)), Some((1, 1)));
        // An idle child that never served and failed: throttles.
        let report = book.exited(1, ExitHow::Code(127), now, THROTTLE).unwrap();
        assert_eq!(
            report.warnings,
            [
                "process /d/smtpd pid 1 exit status 127",
                "/d/smtpd: bad command startup -- throttling"
            ]
        );
        assert!(report.throttled);
        assert_eq!(book.counters(&k).map(|c| (c.total, c.idle)), Some((0, 0)));
        assert!(!book.may_listen(&k, now));
        assert_eq!(book.next_throttle_end(now), Some(now + THROTTLE));
        assert!(book.may_listen(&k, now + THROTTLE));
        assert_eq!(book.next_throttle_end(now + THROTTLE), None);
        // Clean exit of a never-used child (max_idle): silent, no throttle.
        book.spawned(&k, 3, "/d/smtpd".into());
        let report = book.exited(3, ExitHow::Code(0), now, THROTTLE).unwrap();
        assert!(report.warnings.is_empty() && !report.throttled);
        assert!(book.exited(99, ExitHow::Code(0), now, THROTTLE).is_none());
    }

    #[test]
    fn reload_forgets_old_children_for_counting() {
        let now = Instant::now();
        let mut book = Book::new(1);
        let k = key("smtp");
        book.set_service(&k, 1);
        book.spawned(&k, 5, "/d/smtpd".into());
        book.status(&k, st(5, 1, StatusKind::Taken));
        assert!(!book.may_listen(&k, now));
        book.new_generation();
        assert_eq!(book.generation, 2);
        assert!(book.may_listen(&k, now), "the old child no longer counts");
        assert_eq!(
            book.status(&k, st(5, 1, StatusKind::Avail)),
            StatusEffect::Ignored
        );
        book.spawned(&k, 6, "/d/smtpd".into());
        let report = book.exited(5, ExitHow::Code(1), now, THROTTLE).unwrap();
        assert!(
            !report.throttled,
            "old generation does not throttle the new one"
        );
        assert_eq!(book.counters(&k).map(|c| (c.total, c.idle)), Some((1, 1)));
        assert_eq!(book.live_pids(), [6]);
    }

    #[test]
    fn removed_service_children_are_terminated_quietly() {
        let now = Instant::now();
        let mut book = Book::new(1);
        let k = key("pickup");
        book.set_service(&k, 1);
        book.spawned(&k, 8, "/d/pickup".into());
        assert_eq!(book.remove_service(&k), [8]);
        let report = book.exited(8, ExitHow::Signal(15), now, THROTTLE).unwrap();
        assert!(report.warnings.is_empty() && !report.throttled);
        assert!(book.counters(&k).is_none());
    }
}
