//! `spawn`: started by master for master.cf entries such as
//! `policyd-spf unix - n n - 0 spawn user=policyd-spf argv=/usr/bin/policyd-spf`;
//! runs the command once per client connection (Postfix's spawn(8)). Runs as root
//! (to switch to user=) and rests as mail_owner between clients.

#![deny(unsafe_code)]

use rostfix_local::privileges::RootGuard;
use rostfix_local::server::{mail_owner, rest, AGENT_EXIT_STATUS};
use rostfix_pipe::command_env::{environment, time_limit};
use rostfix_pipe::identity::check;
use rostfix_service::manual::Manual;
use rostfix_service::{Connection, Daemon, Passed, Service, Shape, StartError};
use rostfix_spawn::args::SpawnArgs;
use rostfix_spawn::run::{run, Ended, SpawnCommand};
use std::os::fd::OwnedFd;

/// The text of `spawn --help`.
const HELP: Manual = Manual {
    name: "spawn - Rostfix external command spawner",
    synopsis: "spawn -n NAME -t TYPE [-o name=value]... user=USER[:GROUP] argv=COMMAND...",
    description: "\
Runs a command once per client connection, as Postfix's spawn(8): master
listens on the service's socket (unix or inet), and for each client spawn
starts argv= (without a shell) with the connection as its standard input,
output and error, as user= (never root, group 0 or mail_owner: the service
refuses to start). The usual use is a policy server that speaks Postfix's
policy delegation protocol on its standard streams, e.g. policyd-spf, named
by smtpd's check_policy_service unix:private/NAME.

The command runs in its own process group with a clean environment (PATH and
the export_environment variables), in /, and is killed with its group after
NAME_time_limit (default command_time_limit). A non-zero exit status, a
signal or the time limit is logged as a warning; the client sees the
connection close.

Parameters: command_time_limit, NAME_time_limit, export_environment,
mail_owner.",
    more_options: "",
    exit_status: AGENT_EXIT_STATUS,
    see_also: "master(8), smtpd(8), pipe(8)",
};

fn main() {
    rostfix_service::run(Daemon {
        program: "spawn",
        help: HELP,
        before_confine: |service: &mut Service| {
            let owner = mail_owner(service)?;
            let args = SpawnArgs::parse(&service.args.extra).map_err(StartError::daemon)?;
            // /etc/passwd is read here, before any chroot hides it.
            let ident = identity(&args, owner)?;
            let command = SpawnCommand {
                argv: args.argv,
                ident,
                env: environment(&service.config.get_list("export_environment")),
                time_limit: time_limit(&service.config, &service.args.name),
            };
            Ok((owner, command))
        },
        after_confine: |_service: &mut Service, (owner, command): (_, SpawnCommand)| {
            rest(owner)?;
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                serve(&command, conn)
            })))
        },
    })
}

/// user= looked up and refused when it is root, group 0 or mail_owner (pipe's rule).
fn identity(
    args: &SpawnArgs,
    owner: Option<rostfix_local::privileges::Identity>,
) -> Result<rostfix_local::privileges::Identity, StartError> {
    use nix::unistd::{Group, User};
    let unknown = |what: &str| {
        StartError::daemon(rostfix_pipe::args::PipeArgsError::UnknownUser(
            what.to_string(),
        ))
    };
    let user = User::from_name(&args.user)
        .ok()
        .flatten()
        .ok_or_else(|| unknown(&args.user))?;
    let gid = match &args.group {
        Some(name) => {
            Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    StartError::daemon(rostfix_pipe::args::PipeArgsError::UnknownGroup(
                        name.clone(),
                    ))
                })?
                .gid
        }
        None => user.gid,
    };
    let id = rostfix_local::privileges::Identity { uid: user.uid, gid };
    check(id, owner, &args.user_spec()).map_err(StartError::daemon)
}

fn serve(command: &SpawnCommand, conn: Connection) {
    let fd: OwnedFd = match conn {
        Connection::Unix(s) => s.into(),
        Connection::Tcp(s) | Connection::Passed(Passed { stream: s, .. }) => s.into(),
    };
    let program = command.argv.first().map(String::as_str).unwrap_or("");
    let ended = match RootGuard::regain() {
        Ok(_root) => run(command, fd),
        Err(e) => {
            log::warn!("{e}");
            return;
        }
    };
    match ended {
        Ok(Ended::Exited(0)) => {}
        Ok(Ended::Exited(code)) => log::warn!("command {program} exit status {code}"),
        Ok(Ended::Signaled(sig)) => log::warn!("command {program} killed by signal {sig}"),
        Ok(Ended::TimedOut) => log::warn!(
            "command {program}: time limit of {}s exceeded; killed",
            command.time_limit.as_secs()
        ),
        Err(e) => log::warn!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
