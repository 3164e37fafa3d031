//! rostfix_arc_seal_resubmitted in pickup: the local users it lists are list managers
//! (Debian's Mailman runs as `list`), whose sendmail submissions of mail we received
//! get an ARC set (crates/authverify). Their names become uids at start, while
//! /etc/passwd is still readable; a maildrop file's owner is its submitter.

use rostfix_authverify::{ArcSealing, ArcSetupError, Resubmitters};
use rostfix_config::MainCf;
use std::sync::Arc;

/// The sealing and the uids of the listed users.
#[derive(Debug)]
pub struct ResubmitSealing {
    pub sealing: Arc<ArcSealing>,
    uids: Vec<u32>,
}

impl ResubmitSealing {
    /// None when rostfix_arc_seal_resubmitted is empty.
    /// A name that is no local user is a SASL login for smtpd only (logged).
    pub fn from_config(cf: &MainCf) -> Result<Option<ResubmitSealing>, ArcSetupError> {
        let Some(r) = Resubmitters::from_config(cf)? else {
            return Ok(None);
        };
        let mut uids = Vec::with_capacity(r.names.len());
        for name in &r.names {
            match nix::unistd::User::from_name(name) {
                Ok(Some(u)) => uids.push(u.uid.as_raw()),
                _ => log::info!(
                    "{}: {name} is no local user: a SASL login for smtpd only",
                    Resubmitters::PARAM
                ),
            }
        }
        Ok(Some(ResubmitSealing {
            sealing: r.sealing,
            uids,
        }))
    }

    /// `uid` is a listed list manager.
    pub fn lists(&self, uid: u32) -> bool {
        self.uids.contains(&uid)
    }

    /// The ARC set for `content` (what leaves, our signatures included) submitted by
    /// `uid` with envelope sender `sender`: None unless `uid` is listed and the
    /// message carries our Authentication-Results.
    pub fn seal(&self, uid: u32, sender: &str, content: &[u8]) -> Option<String> {
        if !self.lists(uid) {
            return None;
        }
        self.sealing.seal_resubmission(sender, content)
    }
}
