//! smtpd_discard_ehlo_keywords and smtpd_discard_ehlo_keyword_address_maps: EHLO
//! keywords hidden from a client (to work around a broken one), logged as Postfix does
//! unless the list holds `silent-discard`.

use super::Session;
use crate::sink::QueueSink;

impl<S: QueueSink> Session<'_, S> {
    /// Removes the discarded keywords from an EHLO reply (`lines[0]` is our name).
    pub(super) fn discard_ehlo_keywords(&self, lines: &mut Vec<String>) {
        let discard = self.cfg.session.discarded_keywords(self.client.ip);
        if discard.is_empty() {
            return;
        }
        let mut dropped = Vec::new();
        let mut kept = vec![lines[0].clone()];
        for line in lines.drain(..).skip(1) {
            let keyword = line
                .split([' ', '='])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if discard.contains(&keyword) {
                dropped.push(keyword);
            } else {
                kept.push(line);
            }
        }
        *lines = kept;
        if !dropped.is_empty() && !discard.iter().any(|k| k == "silent-discard") {
            log::info!(
                "discarding EHLO keywords: {}",
                dropped.join(" ").to_uppercase()
            );
        }
    }
}
