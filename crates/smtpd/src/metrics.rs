//! smtpd's counts for the native metrics endpoint (issue 20, crates/metrics): the
//! process-wide reporter of `rostfix_metrics::process`, started by main.rs with
//! [`start`], flushed every 5 s and once more when the serving loop retires the
//! process (max_use, max_idle, SIGTERM), so a short-lived process loses no counts.
//!
//! Process-wide rather than threaded through every session: smtpd serves one client
//! at a time, and sessions built without it (unit tests, the fuzz targets) simply
//! count nothing.
//!
//! Labels are bounded: stage names, restriction classes, reply codes, SASL mechanisms
//! we offer, TLS versions and cipher suites; never client addresses, names or domains.

use rostfix_metrics::process;
use std::path::Path;

/// Starts this process's reporter (after confinement: `root` is queue_directory, ".").
pub fn start(root: &Path) {
    process::start("smtpd", root);
}

fn add(name: &str, labels: &[(&str, &str)]) {
    process::add(name, labels, 1.0);
}

/// One client connection to service `service` (master.cf's name, e.g. `smtp`,
/// `submission`).
pub fn connection(service: &str) {
    add("rostfix_smtpd_connections_total", &[("service", service)]);
}

/// One refusal at `stage` (CONNECT, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, BDAT,
/// ETRN) by `restriction` (the list or check that refused: e.g.
/// `smtpd_recipient_restrictions`, `header_body_checks`, `milter`) with reply `code`.
pub fn reject(stage: &str, restriction: &str, code: u16) {
    add(
        "rostfix_smtpd_rejects_total",
        &[
            ("stage", stage),
            ("restriction", restriction),
            ("code", &code.to_string()),
        ],
    );
}

/// One AUTH exchange's end: `ok` or not, by mechanism. A mechanism we do not offer is
/// counted as `other` (the client chooses the word; it must not become a label).
pub fn auth(mechanism: &str, ok: bool) {
    let result = if ok { "success" } else { "failure" };
    add(
        "rostfix_smtpd_auth_total",
        &[
            ("mechanism", mechanism_label(mechanism)),
            ("result", result),
        ],
    );
}

/// The mechanisms smtpd offers (PLAIN, LOGIN) by name, any other word as `other`.
fn mechanism_label(mechanism: &str) -> &'static str {
    match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => "PLAIN",
        "LOGIN" => "LOGIN",
        _ => "other",
    }
}

/// One completed inbound TLS handshake (STARTTLS or wrapper mode).
pub fn tls_handshake(version: &str, cipher: &str) {
    add(
        "rostfix_smtpd_tls_handshakes_total",
        &[("version", version), ("cipher", cipher)],
    );
}

/// One inbound TLS handshake that failed: `timeout` or `error`.
pub fn tls_handshake_failure(why: &str) {
    add(
        "rostfix_smtpd_tls_handshake_failures_total",
        &[("reason", why)],
    );
}

/// One message accepted into the queue, `size` bytes as queued (the log's size=).
pub fn accepted(size: u64) {
    add("rostfix_smtpd_messages_accepted_total", &[]);
    process::observe("rostfix_smtpd_message_size_bytes", &[], size as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_a_reporter_nothing_is_counted_and_nothing_fails() {
        super::connection("smtp");
        super::reject("RCPT", "smtpd_recipient_restrictions", 550);
        super::auth("CRAM-MD5", false);
        super::accepted(100);
    }

    #[test]
    fn client_chosen_mechanism_words_do_not_become_labels() {
        assert_eq!(super::mechanism_label("plain"), "PLAIN");
        assert_eq!(super::mechanism_label("LOGIN"), "LOGIN");
        assert_eq!(super::mechanism_label("X-ANYTHING-1234"), "other");
    }
}
