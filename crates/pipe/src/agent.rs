//! One delivery request from qmgr: run the service's command once for all the
//! request's recipients (qmgr already split them by TRANSPORT_destination_recipient_limit)
//! and report every recipient with the command's outcome. The request loop, queue file
//! marking and log lines are the local agent's (rostfix_local::agent).

use crate::args::PipeArgs;
use crate::copy::{command_input, Envelope};
use crate::macros::{expand, MessageValues, RecipientValues};
use rostfix_local::agent::{deliver_all, load};
use rostfix_local::command::{run_argv, CommandSpec};
use rostfix_local::expand::Leaf;
use rostfix_local::failure::Failure;
use rostfix_local::mbox::asctime;
use rostfix_local::privileges::{Identity, RootGuard};
use rostfix_proto::{DeliveryReply, DeliveryRequest};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A pipe service, ready to deliver.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// The master.cf service name: `relay=` in logs and `TRANSPORT_` parameters.
    pub transport: String,
    pub args: PipeArgs,
    /// The checked `user=` identity.
    pub ident: Identity,
    /// TRANSPORT_time_limit, else command_time_limit.
    pub time_limit: Duration,
    pub recipient_delimiter: String,
    /// export_environment: variables passed on from pipe's own environment.
    pub export_environment: Vec<String>,
}

/// Handles `req` against the queue under `queue_root`.
pub fn handle_request(
    pipe: &Pipe,
    req: &DeliveryRequest,
    queue_root: &Path,
    received: SystemTime,
) -> DeliveryReply {
    let (qf, content) = match load(req, queue_root, received) {
        Ok(loaded) => loaded,
        Err(reply) => return reply,
    };
    if req.probe {
        // deliver_all answers an address verification probe itself, without calling
        // the closure: the command never runs for a probe.
        return deliver_all(req, &qf, received, |_| Vec::new());
    }
    let outcome = match RootGuard::regain() {
        Ok(_root) => deliver(pipe, req, &qf.envelope.attrs, &content),
        Err(e) => {
            log::warn!("{}: {e}", req.queue_id);
            Err(Failure::defer("4.3.0", e.to_string()))
        }
    };
    deliver_all(req, &qf, received, |r| {
        vec![Leaf {
            to: r.address.clone(),
            result: outcome.clone(),
            owner: None,
            passed: false,
            staged: None,
        }]
    })
}

/// Runs the command for the request; Ok holds the `status=sent (...)` text.
pub fn deliver(
    pipe: &Pipe,
    req: &DeliveryRequest,
    attrs: &[(String, String)],
    content: &[u8],
) -> Result<String, Failure> {
    let args = &pipe.args;
    if args.flags.needs_single_recipient() && req.recipients.len() > 1 {
        log::warn!(
            "pipe flag `D' or `O' requires {}_destination_recipient_limit = 1",
            pipe.transport
        );
        return Err(Failure::defer("4.3.5", "mail system configuration error"));
    }
    let Some(first) = req.recipients.first() else {
        return Ok(String::new());
    };
    if args.size_limit > 0 && content.len() as u64 > args.size_limit {
        return Err(Failure::bounce("5.2.3", "message file too big"));
    }
    let msg = MessageValues {
        sender: req.sender.clone(),
        null_sender: args.null_sender.clone(),
        nexthop: req.nexthop.clone(),
        queue_id: req.queue_id.to_string(),
        size: content.len() as u64,
        attrs: attrs.to_vec(),
    };
    let rcpts: Vec<RecipientValues<'_>> = req
        .recipients
        .iter()
        .map(|r| RecipientValues {
            address: &r.address,
            original: if r.orig_address.is_empty() {
                &r.address
            } else {
                &r.orig_address
            },
        })
        .collect();
    let argv = expand(
        &args.argv,
        &msg,
        &rcpts,
        &args.flags,
        &pipe.recipient_delimiter,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = asctime(now);
    let input = command_input(
        content,
        &Envelope {
            sender: &req.sender,
            null_sender: &args.null_sender,
            recipient: &first.address,
            original: rcpts[0].original,
            date: &date,
        },
        &args.flags,
        &args.eol,
    );
    let program = argv.first().cloned().unwrap_or_default();
    run_argv(
        &argv,
        &CommandSpec {
            command: &program,
            shell: "",
            ident: pipe.ident,
            env: crate::command_env::environment(&pipe.export_environment),
            cwd: args.directory.clone(),
            input: &input,
            time_limit: pipe.time_limit,
            file_size_limit: 0,
        },
    )?;
    Ok(format!("delivered via {} service", pipe.transport))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::DeliveryRecipient;
    use rostfix_queue::QueueName;

    fn pipe(line: &str) -> Pipe {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        Pipe {
            transport: "filter".into(),
            args: PipeArgs::parse(&words).unwrap(),
            ident: Identity::current(),
            time_limit: Duration::from_secs(10),
            recipient_delimiter: "+".into(),
            export_environment: vec![],
        }
    }

    fn request(rcpts: &[&str]) -> DeliveryRequest {
        DeliveryRequest {
            queue_name: QueueName::Active,
            queue_id: "ABCDEF123".parse().unwrap(),
            sender: "bob@example.org".into(),
            nexthop: "example.com".into(),
            arrival: 0,
            recipients: rcpts
                .iter()
                .enumerate()
                .map(|(i, a)| DeliveryRecipient {
                    offset: i as u64,
                    address: a.to_string(),
                    orig_address: a.to_string(),
                })
                .collect(),
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        }
    }

    /// A directory with a script that records its arguments and input into `out`
    /// and exits with `code`.
    fn script(tag: &str, code: i32) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("rostfix-pipe-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let path = dir.join("record");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$*\" > {0}\ncat >> {0}\necho said-so\nexit {code}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (path, out)
    }

    #[test]
    fn runs_the_command_with_expanded_argv_and_input() {
        let (path, out) = script("ok", 0);
        let p = pipe(&format!(
            "flags=Rh user=nobody argv={} -d ${{user}} ${{nexthop}} ${{recipient}}",
            path.display()
        ));
        let req = request(&["alice+x@Example.com", "carol@example.com"]);
        let text = deliver(&p, &req, &[], b"S: x\n\nhi\n").unwrap();
        assert_eq!(text, "delivered via filter service");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "-d alice carol example.com alice+x@example.com carol@example.com\n\
             Return-Path: <bob@example.org>\nS: x\n\nhi\n"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn exit_codes_size_and_flag_d_with_many_recipients() {
        let (tempfail, _) = script("75", 75);
        let f = deliver(
            &pipe(&format!("user=nobody argv={}", tempfail.display())),
            &request(&["a@x"]),
            &[],
            b"",
        )
        .unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.3.0"));
        assert_eq!(f.text, "temporary failure. Command output: said-so");
        let (nouser, _) = script("67", 67);
        let f = deliver(
            &pipe(&format!("user=nobody argv={}", nouser.display())),
            &request(&["a@x"]),
            &[],
            b"",
        )
        .unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.1.1"));
        let f = deliver(
            &pipe("user=nobody argv=/usr/bin/false"),
            &request(&["a@x"]),
            &[],
            b"",
        )
        .unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.3.0"));
        assert_eq!(f.text, "Command died with status 1: \"/usr/bin/false\"");
        let f = deliver(
            &pipe("user=nobody size=3 argv=/bin/true"),
            &request(&["a@x"]),
            &[],
            b"four",
        )
        .unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.2.3"));
        let f = deliver(
            &pipe("flags=D user=nobody argv=/bin/true"),
            &request(&["a@x", "b@x"]),
            &[],
            b"",
        )
        .unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.3.5"));
        for p in [tempfail, nouser] {
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }
}
