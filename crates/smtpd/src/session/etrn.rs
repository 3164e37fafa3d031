//! ETRN (RFC 1985), as Postfix's smtpd answers it: the domain is checked against
//! smtpd_etrn_restrictions (after the client and HELO lists under smtpd_delay_reject)
//! and fast_flush_domains, then qmgr is asked to deliver the deferred mail for it now.
//! Postfix hands this to its flush(8) service, which keeps per-site logs; Rostfix's
//! qmgr finds the site's deferred messages itself (the same site flush as
//! `rostqueue -s`), so there is no flush service and flush_service_name is unused.
//! The replies have no enhanced status codes, as Postfix's do not.

use super::checks::CheckPoint;
use super::Session;
use crate::reply::Reply;
use crate::restrictions::eval::{is_address_literal, valid_hostname};
use crate::sink::QueueSink;

fn plain(code: u16, text: impl Into<String>) -> Reply {
    Reply::plain(code, vec![text.into()])
}

impl<S: QueueSink> Session<'_, S> {
    pub(super) fn etrn(&mut self, arg: &str) -> Reply {
        if self.cfg.session.helo_required && self.helo.is_none() {
            return plain(503, "Error: send HELO/EHLO first");
        }
        if self.txn.is_some() {
            return plain(503, "Error: MAIL transaction in progress");
        }
        let mut words = arg.split_whitespace();
        let (Some(word), None) = (words.next(), words.next()) else {
            return plain(500, "Syntax: ETRN domain");
        };
        // RFC 1985's `@domain` (subdomains too) and `#queue` forms name the site.
        let site = word
            .strip_prefix('@')
            .or_else(|| word.strip_prefix('#'))
            .unwrap_or(word);
        if !valid_hostname(site) && !is_address_literal(site) {
            return plain(501, "Error: invalid parameter syntax");
        }
        self.etrn_domain = Some(site.to_string());
        let refused = self.restriction_check(CheckPoint::Etrn, None, None);
        self.etrn_domain = None;
        if let Some(reply) = refused {
            return reply;
        }
        let who = self.client.log_name();
        match self.cfg.restrictions.fast_flush_domains.matches(site) {
            Ok(true) => {}
            Ok(false) => {
                log::warn!("reject: ETRN {site}... from {who}");
                return plain(459, format!("<{site}>: service unavailable"));
            }
            Err(e) => {
                log::warn!("fast_flush_domains: lookup of {site}: {e}");
                return plain(458, "Unable to queue messages");
            }
        }
        match self.sink.flush_site(site) {
            Ok(()) => plain(250, "Queuing started"),
            Err(e) => {
                log::warn!("unable to talk to the queue manager: {e}");
                plain(458, "Unable to queue messages")
            }
        }
    }
}
