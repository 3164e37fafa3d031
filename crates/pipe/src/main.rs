//! `pipe`: the pipe delivery agent daemon, started by master for master.cf entries
//! such as `dovecot unix - n n - - pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/
//! dovecot-lda -f ${sender} -d ${user}@${nexthop}`. Runs as root (to switch to user=)
//! and rests as mail_owner between deliveries, like local.

#![deny(unsafe_code)]

use rostfix_local::agent::set_relay;
use rostfix_local::server::{mail_owner, rest, AGENT_EXIT_STATUS};
use rostfix_pipe::agent::{handle_request, Pipe};
use rostfix_pipe::args::PipeArgs;
use rostfix_pipe::command_env::time_limit;
use rostfix_pipe::identity::command_identity;
use rostfix_proto::{serve_delivery_stream, StreamEnd};
use rostfix_service::manual::Manual;
use rostfix_service::{Connection, Daemon, Passed, Service, Shape, StartError};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The text of `pipe --help`.
const HELP: Manual = Manual {
    name: "pipe - Rostfix delivery to external command",
    synopsis: "pipe -n NAME -t TYPE [-o name=value]... flags=... user=USER[:GROUP] \
               [size=N] [eol=STRING] [directory=PATH] [null_sender=ADDR] argv=COMMAND...",
    description: "\
Delivers mail to a command named in master.cf, as Postfix's pipe(8). qmgr sends
delivery requests on private/NAME; for each, pipe runs argv= once (without a
shell) with the message on standard input, as user= (never root, group 0 or
mail_owner: the service refuses to start), killed with its process group after
NAME_time_limit (default command_time_limit).

argv= macros: ${sender} (null_sender= for <>), ${nexthop}, ${queue_id},
${size}, ${client_address}, ${client_hostname}, ${client_helo},
${client_protocol}, ${client_port}, ${sasl_method}, ${sasl_username},
${sasl_sender}, and per recipient ${recipient}, ${original_recipient},
${user}, ${extension}, ${mailbox}, ${domain}: a word with a per-recipient
macro is repeated once per recipient (NAME_destination_recipient_limit
decides how many a request holds).

flags=: B blank line at the end, D Delivered-To:, F From_ line,
O X-Original-To:, R Return-Path:, X final delivery, h fold domains to lower
case, u fold localparts to lower case, q quote localparts, . dot-quote lines,
> quote From_ lines (D and O need NAME_destination_recipient_limit = 1).
size= bounces larger messages (5.2.3), eol= sets the line end (\\r\\n),
directory= the working directory.

Exit status 0 is delivered (`status=sent (delivered via NAME service)`);
the sysexits(3) codes map as Postfix does (75 EX_TEMPFAIL defers 4.3.0,
67 EX_NOUSER bounces 5.1.1, ...); another status bounces 5.3.0, a signal
defers; the command's first 2 KiB of output go into the reason.

Parameters: command_time_limit, NAME_time_limit, export_environment,
recipient_delimiter, mail_owner, queue_directory.",
    more_options: "",
    exit_status: AGENT_EXIT_STATUS,
    see_also: "master(8), qmgr(8), local(8)",
};

fn main() {
    rostfix_service::run(Daemon {
        program: "pipe",
        help: HELP,
        before_confine: |service: &mut Service| {
            let owner = mail_owner(service)?;
            let args = PipeArgs::parse(&service.args.extra).map_err(StartError::daemon)?;
            // /etc/passwd is read here, before any chroot hides it.
            let ident = command_identity(&args, owner).map_err(StartError::daemon)?;
            let transport = service.args.name.clone();
            let pipe = Pipe {
                time_limit: time_limit(&service.config, &transport),
                transport,
                args,
                ident,
                recipient_delimiter: service.config.get("recipient_delimiter"),
                export_environment: service.config.get_list("export_environment"),
            };
            Ok((owner, pipe))
        },
        after_confine: |service: &mut Service, (owner, pipe): (_, Pipe)| {
            rest(owner)?;
            // relay= names the service for the life of the process.
            set_relay(Box::leak(pipe.transport.clone().into_boxed_str()));
            let ipc_timeout = service.ipc_timeout();
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                serve_connection(&pipe, conn, ipc_timeout)
            })))
        },
    })
}

fn serve_connection(pipe: &Pipe, conn: Connection, ipc_timeout: Duration) {
    if !conn.bound_or_refuse(ipc_timeout) {
        return;
    }
    match conn {
        Connection::Unix(mut s) => serve_stream(pipe, &mut s),
        Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
            serve_stream(pipe, &mut s)
        }
    }
}

fn serve_stream<S: Read + Write>(pipe: &Pipe, stream: &mut S) {
    // After confine() the working directory is queue_directory.
    let end = serve_delivery_stream(stream, |req| {
        handle_request(pipe, req, Path::new("."), SystemTime::now())
    });
    if !matches!(end, StreamEnd::Done) {
        log::warn!("{end}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
