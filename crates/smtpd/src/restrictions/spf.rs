//! reject_spf_fail, a Rostfix restriction: Postfix sites get it from a policy server
//! (policyd-spf through check_policy_service); here it is SPF of the MAIL FROM
//! identity (postmaster@HELO for the null sender) evaluated by crates/authverify,
//! whose result the Authentication-Results header of the message reuses.
//!
//! Only `fail` rejects, with RFC 7372's 5.7.23; softfail, neutral, none, permerror
//! and temperror go on (a DNS failure is never a rejection: the sender's domain may
//! be fine). Before MAIL FROM (no sender yet) it does nothing.

use super::config::RestrictionConfig;
use super::eval::{reply, Facts, Step};
use rostfix_authverify::{Peer, SpfResult};

pub(super) fn reject_fail(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    let (Some(sender), Some(ip), Some(verifier)) =
        (f.sender, f.client_ip, rc.auth_verifier.as_deref())
    else {
        return Step::Go;
    };
    let helo = f.helo.unwrap_or("");
    let spf = verifier.spf_mail_from(&Peer {
        ip,
        helo,
        sender,
        iprev: None,
    });
    if spf.result() != SpfResult::Fail {
        return Step::Go;
    }
    let shown = if sender.is_empty() { "<>" } else { sender };
    let mut text = format!(
        "<{shown}>: Sender address rejected: SPF fail: {} does not designate {ip} as permitted sender",
        spf.domain()
    );
    if let Some(exp) = spf.explanation().filter(|e| !e.trim().is_empty()) {
        // The domain's own exp= text (RFC 7208 6.2), kept printable and short.
        let exp: String = exp.chars().filter(|c| !c.is_control()).take(200).collect();
        text.push_str(": ");
        text.push_str(&exp);
    }
    Step::Reject(reply(550, "5.7.23", text))
}
