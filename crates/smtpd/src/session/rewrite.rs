//! cleanup's address rewriting at the point smtpd queues a message (a child module of
//! session/mod.rs): the envelope sender and recipients through canonical maps and
//! masquerading, the automatic BCC recipients added (NOTIFY=NEVER: no notices about
//! them), and the header rewriter handed to content inspection when the client
//! matches local_header_rewrite_clients or remote_header_rewrite_domain is set.
//! Under receive_override_options = no_address_mappings `Settings::rewrite` is a
//! rewriter without tables, masquerading or BCC that still puts addresses in
//! canonical form and qualifies header addresses, as Postfix's cleanup.

use super::Session;
use crate::reply::Reply;
use crate::sink::QueueSink;
use rostfix_inspect::HeaderRewrite;
use rostfix_queue::Envelope;
use rostfix_rewrite::rewriter::ClientFacts;

/// The reply when a rewriting table fails: try again later, as Postfix's cleanup.
fn lookup_problem(e: &rostfix_rewrite::RewriteError) -> Reply {
    log::warn!("address rewriting: {e} -- message not accepted, try again later");
    Reply::new(
        451,
        "4.3.0",
        "Error: address rewriting table lookup problem",
    )
}

impl<S: QueueSink> Session<'_, S> {
    /// `envelope` with its addresses rewritten and the BCC recipients added.
    pub(super) fn rewrite_envelope(&self, mut envelope: Envelope) -> Result<Envelope, Reply> {
        if let Some(rw) = &self.cfg.rewrite {
            rw.rewrite_envelope(&mut envelope)
                .map_err(|e| lookup_problem(&e))?;
        }
        Ok(envelope)
    }

    /// The header rewriter for this client's message, if headers are rewritten. A
    /// local_header_rewrite_clients table that fails is 451 4.3.0, as in Postfix.
    pub(super) fn header_rewrite(&self) -> Result<Option<HeaderRewrite>, Reply> {
        let Some(rw) = self.cfg.rewrite.clone() else {
            return Ok(None);
        };
        let ccert = self.ccert.as_ref();
        let facts = ClientFacts {
            address: self.client.ip,
            ccert_trusted: ccert.is_some_and(|c| c.trusted),
            ccert_fingerprints: ccert
                .map(|c| vec![c.pkey_fingerprint.clone(), c.cert_fingerprint.clone()])
                .unwrap_or_default(),
            own_interface: self
                .client
                .ip
                .is_some_and(|ip| self.cfg.own_addresses.contains(&ip)),
            in_mynetworks: self
                .client
                .ip
                .is_some_and(|ip| self.cfg.mynetworks.contains(ip)),
            sasl_authenticated: self.auth.username.is_some(),
        };
        let context = match rw.header_context(&facts) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => {
                log::warn!("local_header_rewrite_clients: {e}");
                return Err(Reply::new(451, "4.3.0", "Temporary lookup error"));
            }
        };
        Ok(Some(Box::new(move |header: &str| {
            rw.rewrite_header(header, &context)
                .map_err(|e| e.to_string())
        })))
    }
}
