//! `local`: the local delivery agent daemon, started by master (master.cf:
//! `local unix - n n - - local`). Runs as root, without chroot, so that it can deliver
//! with each recipient's identity; see the library (src/lib.rs) for what it delivers.

#![deny(unsafe_code)]

use rostfix_authverify::ArcSealing;
use rostfix_local::agent::Context;
use rostfix_local::deliver::system_user;
use rostfix_local::resubmit::QueueForwarder;
use rostfix_local::server::{mail_owner, rest, serve_stream, AGENT_EXIT_STATUS};
use rostfix_local::setup::{local_conf, settings};
use rostfix_service::manual::Manual;
use rostfix_service::{Connection, Daemon, Passed, Service, Shape, StartError};
use std::path::Path;
use std::time::Duration;

/// The text of `local --help`.
const HELP: Manual = Manual {
    name: "local - Rostfix local mail delivery",
    synopsis: "local -n NAME -t TYPE [-c] [-u] [-v] [-o name=value]...",
    description: "\
The local delivery agent. master starts it with a listening socket (fd 4) and a
status pipe (fd 3); qmgr connects to private/local and sends delivery requests
one after another on the connection, which local keeps open until qmgr closes
it. For each recipient local, like Postfix's local(8):

- bounces it (5.4.6) when the message already has a Delivered-To: header with
  this address (a mail forwarding loop);
- looks the local part up in alias_maps (with, then without its extension) and
  delivers to every destination of the alias: addresses, \\user, |command,
  /file, :include:/file (see aliases(5)); commands and files run as the alias
  table file's owner, or default_privs when root owns it; owner-NAME becomes
  the sender of forwarded copies;
- else finds the passwd user (luser_relay, or bounce 5.1.1, when unknown),
  follows the first forward_path file ($home/.forward+EXT, $home/.forward),
  read as the user, owned by the user or root, not group/world writable;
- else runs mailbox_command as the user, or appends the message to
  $HOME/$home_mailbox (Maildir when it ends in /, else mbox) or
  $mail_spool_directory/USER, adding Return-Path:, X-Original-To: (the
  recipient as received) and Delivered-To:. mbox
  files are locked with a dotlock and an fcntl lock. With
  rostfix_maildir_extension_folders = yes, mail for user+ext goes to the
  Maildir++ folder .ext.

Commands run via /bin/sh -c (or local_command_shell) with SENDER, RECIPIENT,
USER, HOME, SHELL, LOGNAME, LOCAL, DOMAIN, EXTENSION, ORIGINAL_RECIPIENT, PATH
and the export_environment variables, in command_execution_directory, killed
after command_time_limit; exit codes map to DSN codes as sysexits(3) says
(75 defers, 67 bounces 5.1.1, ...). Addresses that are not local are written
back into the queue (incoming/) as a new message and qmgr is woken. Each final
destination gets the message once per message delivered. Delivered recipients
are marked done in the queue file before the reply.

Maildir copies of queued mail get a name derived from the queue id, arrival
time and recipient (ARRIVAL.MMICROSQQUEUEID_OFFSET.HOST), so a delivery repeated
after a crash finds the earlier copy in new/ (or, for a deferred message, in
cur/) instead of storing a second one. Group commit: qmgr may send up to
rostfix_local_batch_limit queued messages (rostfix_local_batch_size_limit
bytes) for one recipient in one request; local stores each, syncs each Maildir
new/ directory once for the whole batch, answers per message, and qmgr records
the done marks with one sync. mbox, file, command and forwarding destinations
are still made durable and marked done one message at a time.

Parameters: myhostname, mydestination, myorigin, alias_maps, allow_mail_to_commands,
allow_mail_to_files, command_execution_directory, command_time_limit,
default_privs, expansion_size_limit, export_environment, forward_path,
home_mailbox, local_command_shell, luser_relay, mail_spool_directory,
mailbox_command, mailbox_size_limit, recipient_delimiter,
rostfix_maildir_extension_folders, queue_directory, mail_owner;
rostfix_arc_seal_forwarded with rostfix_dkim_key_table, rostfix_dkim_signing_table,
rostfix_dns_servers, rostfix_auth_verify_timeout and rostfix_public_suffix_list (an
ARC set on each forwarded copy, docs/mail-auth.md).",
    more_options: "",
    exit_status: AGENT_EXIT_STATUS,
    see_also: "master(8), qmgr(8), virtual(8), rostfix(1), aliases(5), rostalias(1)",
};

fn main() {
    rostfix_service::run(Daemon {
        program: "local",
        help: HELP,
        before_confine: |service: &mut Service| mail_owner(service),
        after_confine: |service: &mut Service, owner| {
            // The DKIM keys are root's (mode 0600): read before resting as mail_owner.
            let arc = ArcSealing::from_config(&service.config, "rostfix_arc_seal_forwarded")
                .map_err(StartError::daemon)?;
            rest(owner)?;
            let settings = settings(&service.config);
            let conf = local_conf(&service.config);
            let ipc_timeout = service.ipc_timeout();
            // After confine() the working directory is queue_directory.
            let mut forwarder = QueueForwarder {
                root: ".".into(),
                owner,
                arc,
            };
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                let mut cx = Context {
                    settings: &settings,
                    conf: &conf,
                    users: &system_user,
                    forwarder: &mut forwarder,
                };
                serve_connection(&mut cx, conn, ipc_timeout)
            })))
        },
    })
}

fn serve_connection(cx: &mut Context<'_>, conn: Connection, ipc_timeout: Duration) {
    let root = Path::new(".");
    if !conn.bound_or_refuse(ipc_timeout) {
        return;
    }
    match conn {
        Connection::Unix(mut s) => serve_stream(cx, &mut s, root),
        Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
            serve_stream(cx, &mut s, root)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
