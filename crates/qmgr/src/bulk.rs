//! What qmgr does for bulk senders with each outcome (docs/bulk-sending.md): one JSON
//! delivery-log record per attempt per recipient (`rostfix_delivery_log`), hard
//! bounces of the configured classes put on the suppression list, and the list
//! consulted before mail for a relayed address is handed to an agent.
//!
//! qmgr is the one writer of both: every agent's results (and those of qmgr's own
//! transports) pass through it, and it knows the message's campaign id.

use rostfix_config::MainCf;
use rostfix_maillog::outcome::{classify, Class, Outcome};
use rostfix_maillog::{AttemptLog, AttemptRecord};
use rostfix_queue::{SuppressionAction, SuppressionCache, SuppressionEntry, SuppressionStore};
use std::path::Path;

/// The queue-file attribute naming the campaign a message belongs to (written by
/// the bus intake and by `sendmail -o campaign_id=...`-style submitters).
pub const CAMPAIGN_ATTR: &str = rostfix_queue::CAMPAIGN_ID_ATTR;

/// Why the bulk-sending settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("{0}")]
    Setting(String),
    #[error("rostfix_delivery_log: {0}")]
    Log(#[from] rostfix_maillog::LogError),
}

/// The bulk-sending settings of main.cf.
#[derive(Debug, Clone)]
pub struct BulkSettings {
    pub action: SuppressionAction,
    /// Classes of permanent failures that list the recipient.
    pub classes: Vec<Class>,
    /// Seconds an entry lasts.
    pub expiry: i64,
    /// rostfix_delivery_log; empty = none.
    pub delivery_log: String,
}

impl Default for BulkSettings {
    fn default() -> BulkSettings {
        BulkSettings {
            action: SuppressionAction::Off,
            classes: Vec::new(),
            expiry: 0,
            delivery_log: String::new(),
        }
    }
}

impl BulkSettings {
    /// Reads the parameters; a wrong action or class name is an error naming it.
    pub fn load(main: &MainCf) -> Result<BulkSettings, BulkError> {
        let action = SuppressionAction::parse(&main.get("rostfix_suppression_action"))
            .map_err(BulkError::Setting)?;
        let mut classes = Vec::new();
        for word in main.get_list("rostfix_suppression_classes") {
            classes.push(Class::parse(&word).ok_or_else(|| {
                BulkError::Setting(format!(
                    "rostfix_suppression_classes: unknown class {word:?}"
                ))
            })?);
        }
        Ok(BulkSettings {
            action,
            classes,
            expiry: i64::try_from(main.get_time("rostfix_suppression_expiry").as_secs())
                .unwrap_or(i64::MAX),
            delivery_log: main.get("rostfix_delivery_log"),
        })
    }
}

/// The delivery log and the suppression list of one qmgr.
#[derive(Debug, Default)]
pub struct Bulk {
    settings: BulkSettings,
    log: AttemptLog,
    store: Option<(SuppressionStore, SuppressionCache)>,
    /// Entries to add, written once per reply (one lock, one fsync for all).
    pending: Vec<SuppressionEntry>,
}

impl Bulk {
    /// Opens the delivery log (call before the chroot: its path is outside it).
    pub fn open(settings: BulkSettings) -> Result<Bulk, BulkError> {
        let log = AttemptLog::open(&settings.delivery_log)?;
        Ok(Bulk {
            settings,
            log,
            store: None,
            pending: Vec::new(),
        })
    }

    /// Where the suppression list lives (queue_directory as seen after confinement).
    pub fn set_root(&mut self, root: &Path) {
        let store = SuppressionStore::new(root);
        self.store = Some((store.clone(), SuppressionCache::new(store)));
    }

    /// True when mail for `address` must not leave (checked for relayed recipients).
    pub fn is_suppressed(&mut self, address: &str, now: i64) -> bool {
        if self.settings.action == SuppressionAction::Off {
            return false;
        }
        match &mut self.store {
            Some((_, cache)) => cache.is_suppressed(address, now),
            None => false,
        }
    }

    /// Logs one attempt and notes a hard bounce for the list; returns its class. The
    /// record's `class` is set here, from its status, dsn and reply, whatever the
    /// caller put there.
    pub fn record(&mut self, mut a: AttemptRecord<'_>) -> Class {
        let class = classify(&Outcome::of(a.status, a.dsn, a.reply));
        a.class = class;
        self.log.append(&a);
        let now = a.time;
        if a.status == "bounced"
            && self.settings.action != SuppressionAction::Off
            && self.settings.classes.contains(&class)
        {
            self.pending.push(SuppressionEntry {
                address: a.recipient.to_string(),
                expires: now.saturating_add(self.settings.expiry),
                added: now,
                reason: format!("{class} {} {}", a.dsn, a.reply),
            });
        }
        class
    }

    /// Writes the hard bounces noted since the last call to the list.
    pub fn flush(&mut self, now: i64) {
        if self.pending.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.pending);
        let Some((store, _)) = &self.store else {
            return;
        };
        match store.add(&entries, now) {
            Ok(_) => {
                for e in &entries {
                    log::info!("suppressed <{}>: {}", e.address, e.reason);
                }
            }
            Err(e) => log::warn!("cannot update the suppression list: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt<'a>(status: &'a str, dsn: &'a str, text: &'a str) -> AttemptRecord<'a> {
        AttemptRecord {
            time: 1000,
            class: Class::Other,
            attempt: None,
            queue_id: "ABC123",
            campaign_id: Some("c1"),
            sender: "news@example.org",
            recipient: "Bob@Example.NET",
            orig_recipient: "bob@example.net",
            status,
            dsn,
            relay: "mx[127.0.0.1]:25",
            reply: text,
            tls: None,
            delay: 0.5,
            delays: None,
        }
    }

    fn temp_root(name: &str) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("qmgr-bulk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(rostfix_queue::SUPPRESS_DIR)).expect("dir");
        root
    }

    #[test]
    fn hard_bounces_of_listed_classes_are_suppressed() {
        let root = temp_root("hard");
        let log = root.join("delivery.json");
        let mut bulk = Bulk::open(BulkSettings {
            action: SuppressionAction::Bounce,
            classes: vec![Class::BadMailbox, Class::BadDomain],
            expiry: 3600,
            delivery_log: log.to_string_lossy().into_owned(),
        })
        .expect("open");
        bulk.set_root(&root);
        let c = bulk.record(attempt(
            "bounced",
            "5.1.1",
            "host mx said: 550 5.1.1 user unknown (in reply to RCPT TO command)",
        ));
        assert_eq!(c, Class::BadMailbox);
        // Quota is not a hard bounce class, and deferrals never list.
        bulk.record(attempt("bounced", "5.2.2", "mailbox full"));
        bulk.record(attempt("deferred", "4.1.1", "user unknown"));
        assert!(!bulk.is_suppressed("bob@example.net", 1001));
        bulk.flush(1000);
        assert!(bulk.is_suppressed("bob@example.net", 1001));
        assert!(!bulk.is_suppressed("bob@example.net", 4601));
        let text = std::fs::read_to_string(&log).expect("log");
        let classes: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["class"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        assert_eq!(classes, ["bad-mailbox", "quota", "bad-mailbox"]);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn off_records_and_checks_nothing() {
        let root = temp_root("off");
        let mut bulk = Bulk::open(BulkSettings {
            classes: vec![Class::BadMailbox],
            expiry: 3600,
            ..BulkSettings::default()
        })
        .expect("open");
        bulk.set_root(&root);
        bulk.record(attempt("bounced", "5.1.1", "user unknown"));
        bulk.flush(1000);
        assert!(!bulk.is_suppressed("bob@example.net", 1001));
        assert!(!root.join(rostfix_queue::SUPPRESS_DIR).join("list").exists());
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
