//! The manual page printed by `pickup --help`.

use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};

/// The text of `pickup --help`.
pub const HELP: Manual = Manual {
    name: "pickup - the Rostfix local mail pickup service",
    synopsis: "pickup -n pickup -t unix [-c] [-u] [-o name=value]...",
    description: "\
Started by master(8) (`pickup unix n - y 60 1 pickup`). Takes the files
rostdrop(1) left in maildrop/, trusting the file owner's uid rather than
anything in the file, copies only the sender, recipients and the attributes
a local submitter may set (body_type, dsn_ret, dsn_envid; others are ignored
with a warning), turns site!user and user%site into user@site
(swap_bangpath, allow_percent_hack), qualifies bare addresses with
@$myorigin, rewrites the envelope and the address headers through the
canonical tables, masquerading and automatic BCC (docs/rewriting.md),
adds a Received:
header, streams the content into incoming/ (a message over
message_size_limit is removed, not queued), removes the maildrop file and
wakes qmgr. Unparseable files go to corrupt/; entries that are not regular
files are removed, or logged once and skipped if they cannot be. The content
goes through header_checks, mime_header_checks, nested_header_checks and
body_checks as smtpd's does; a REJECT returns the message to its sender in a
non-delivery notice (docs/content-inspection.md). Then non_smtpd_milters see
it, native DKIM signing signs it (docs/dkim.md), a list manager's mail that
carries our Authentication-Results is ARC-sealed (rostfix_arc_seal_resubmitted,
docs/mail-auth.md), and campaign mail (a
campaign_id, list headers or Precedence: bulk) is held to
rostfix_bulk_hygiene_checks: warned about, or returned with 5.7.1 under
rostfix_bulk_hygiene_action = reject (docs/bulk-sending.md).",
    more_options: "\
Parameters used: myhostname, myorigin, message_size_limit, header_checks,
mime_header_checks, nested_header_checks, body_checks, body_checks_size_limit,
disable_mime_input_processing, header_size_limit, receive_override_options,
canonical_maps, sender_canonical_maps, recipient_canonical_maps,
canonical_classes, sender_canonical_classes, recipient_canonical_classes,
masquerade_domains, masquerade_exceptions, masquerade_classes, always_bcc,
sender_bcc_maps, recipient_bcc_maps, swap_bangpath, allow_percent_hack,
propagate_unmatched_extensions, recipient_delimiter, non_smtpd_milters,
rostfix_dkim_key_table, rostfix_dkim_signing_table, rostfix_dkim_multiple_signatures,
rostfix_arc_seal_resubmitted, rostfix_auth_verify_timeout, rostfix_public_suffix_list,
rostfix_bulk_hygiene_checks, rostfix_bulk_hygiene_action, rostfix_dns_servers.",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "sendmail(1), rostdrop(1), qmgr(8)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
