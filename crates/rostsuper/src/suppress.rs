//! `rostsuper -S list|add|remove`: the suppression list of hard-bounced recipients
//! (docs/bulk-sending.md). Changes go through the queue crate's store, which takes the
//! same lock qmgr takes, so an edit made while qmgr adds entries loses neither.

use crate::args::SuppressCmd;
use rostfix_maillog::date::{broken_down, local_offset};
use rostfix_queue::{SuppressError, SuppressionEntry, SuppressionStore};
use std::io::Write;

/// The reason recorded for an address added by hand.
const MANUAL_REASON: &str = "added by rostsuper -S";

/// `YYYY-MM-DD HH:MM:SS` in local time.
fn local_time(unix: i64) -> String {
    let (y, mo, d, h, mi, s, _) = broken_down(unix, local_offset(unix));
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// One listing line: address, expiry, time added, reason (tab-separated).
fn listing_line(e: &SuppressionEntry) -> String {
    format!(
        "{}\texpires {}\tadded {}\t{}",
        e.address,
        local_time(e.expires),
        local_time(e.added),
        e.reason
    )
}

/// Runs one -S command; `report` prints and logs a line, `warn` a warning. Returns
/// false when some address could not be handled.
pub fn run(
    store: &SuppressionStore,
    cmd: &SuppressCmd,
    expiry: i64,
    now: i64,
    report: &dyn Fn(&str),
    warn: &dyn Fn(&str),
) -> Result<bool, SuppressError> {
    match cmd {
        SuppressCmd::List => {
            let loaded = store.load()?;
            let mut out = std::io::stdout().lock();
            for e in loaded.entries.iter().filter(|e| e.expires > now) {
                // A closed pipe (| head) ends the listing, nothing more.
                if writeln!(out, "{}", listing_line(e)).is_err() {
                    break;
                }
            }
            if loaded.bad_lines > 0 {
                warn(&format!(
                    "{}: {} unreadable line(s) skipped",
                    store.list_path().display(),
                    loaded.bad_lines
                ));
            }
            Ok(true)
        }
        SuppressCmd::Add(addresses) => {
            let mut ok = true;
            let mut entries = Vec::new();
            for a in addresses {
                match rostfix_queue::normalize_address(a) {
                    Some(address) => entries.push(SuppressionEntry {
                        address,
                        expires: now.saturating_add(expiry),
                        added: now,
                        reason: MANUAL_REASON.into(),
                    }),
                    None => {
                        warn(&format!("not a valid address: {}", a.escape_debug()));
                        ok = false;
                    }
                }
            }
            if !entries.is_empty() {
                store.add(&entries, now)?;
                for e in &entries {
                    report(&format!("suppressed <{}>", e.address));
                }
            }
            Ok(ok)
        }
        SuppressCmd::Remove(addresses) => {
            let mut ok = true;
            for a in addresses {
                match store.remove(a, now) {
                    Ok(true) => report(&format!(
                        "<{}>: removed from the suppression list",
                        a.trim()
                    )),
                    Ok(false) => report(&format!("<{}>: not on the suppression list", a.trim())),
                    Err(SuppressError::BadAddress(_)) => {
                        warn(&format!("not a valid address: {}", a.escape_debug()));
                        ok = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(ok)
        }
    }
}
