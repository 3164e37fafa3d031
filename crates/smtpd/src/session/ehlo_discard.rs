//! smtpd_discard_ehlo_keywords and smtpd_discard_ehlo_keyword_address_maps applied to
//! smtpd's EHLO reply (the rules are crate::ehlo_discard's, shared with postscreen).

use super::Session;
use crate::sink::QueueSink;

impl<S: QueueSink> Session<'_, S> {
    /// Removes the discarded keywords from an EHLO reply (`lines[0]` is our name).
    pub(super) fn discard_ehlo_keywords(&self, lines: &mut Vec<String>) {
        self.cfg.session.discard_ehlo.apply(self.client.ip, lines);
    }
}
