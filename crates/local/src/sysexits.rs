//! How a command's exit status becomes a delivery outcome, as Postfix's sys_exits.c and
//! pipe_command.c decide: the sendmail-style exit codes of sysexits.h (64..78) carry an
//! enhanced status code and a text; EX_TEMPFAIL (75) and EX_OSERR (71) are soft (the
//! message is deferred), the others bounce. Any other non-zero status bounces with
//! 5.3.0 "Command died with status N"; death by a signal defers (4.3.0); running past
//! command_time_limit bounces (5.3.0 "Command time limit exceeded").

use crate::failure::Failure;

/// (code, dsn, text) of sysexits.h, as Postfix lists them.
const SYSEXITS: &[(i32, &str, &str)] = &[
    (64, "5.3.0", "command line usage error"),
    (65, "5.6.0", "data format error"),
    (66, "5.3.0", "cannot open input"),
    (67, "5.1.1", "user unknown"),
    (68, "5.1.2", "host name unknown"),
    (69, "5.3.0", "service unavailable"),
    (70, "5.3.0", "internal software error"),
    (71, "4.3.0", "system resource problem"),
    (72, "5.3.0", "critical OS file missing"),
    (73, "5.2.0", "can't create user output file"),
    (74, "5.3.0", "input/output error"),
    (75, "4.3.0", "temporary failure"),
    (76, "5.5.0", "remote error in protocol"),
    (77, "5.7.0", "permission denied"),
    (78, "5.3.5", "local configuration error"),
];

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEnd {
    Exited(i32),
    Signaled(i32),
    TimedOut,
}

/// The outcome of a command delivery: Ok for exit 0, else the failure to report.
/// `command` and `output` (the captured, already sanitized output) go into the text.
pub fn command_outcome(end: CommandEnd, command: &str, output: &str) -> Result<(), Failure> {
    let tail = if output.is_empty() {
        String::new()
    } else {
        format!(". Command output: {output}")
    };
    match end {
        CommandEnd::Exited(0) => Ok(()),
        CommandEnd::TimedOut => Err(Failure::bounce(
            "5.3.0",
            format!("Command time limit exceeded: \"{command}\"{tail}"),
        )),
        CommandEnd::Signaled(sig) => Err(Failure::defer(
            "4.3.0",
            format!("Command died with signal {sig}: \"{command}\"{tail}"),
        )),
        CommandEnd::Exited(code) => match SYSEXITS.iter().find(|(c, _, _)| *c == code) {
            Some((_, dsn, text)) => {
                let text = format!("{text}{tail}");
                if dsn.starts_with('4') {
                    Err(Failure::defer(dsn, text))
                } else {
                    Err(Failure::bounce(dsn, text))
                }
            }
            None => Err(Failure::bounce(
                "5.3.0",
                format!("Command died with status {code}: \"{command}\"{tail}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(end: CommandEnd) -> (bool, &'static str, String) {
        let f = command_outcome(end, "/bin/x", "").unwrap_err();
        (f.permanent, f.dsn, f.text)
    }

    #[test]
    fn success() {
        assert!(command_outcome(CommandEnd::Exited(0), "x", "noise").is_ok());
    }

    #[test]
    fn sysexits_mapping() {
        assert_eq!(
            code(CommandEnd::Exited(75)),
            (false, "4.3.0", "temporary failure".into())
        );
        assert_eq!(
            code(CommandEnd::Exited(67)),
            (true, "5.1.1", "user unknown".into())
        );
        assert!(!code(CommandEnd::Exited(71)).0);
        assert_eq!(code(CommandEnd::Exited(77)).1, "5.7.0");
        assert_eq!(code(CommandEnd::Exited(78)).1, "5.3.5");
    }

    #[test]
    fn other_status_signal_timeout() {
        assert_eq!(
            code(CommandEnd::Exited(1)),
            (
                true,
                "5.3.0",
                "Command died with status 1: \"/bin/x\"".into()
            )
        );
        assert!(!code(CommandEnd::Signaled(9)).0);
        let (perm, dsn, text) = code(CommandEnd::TimedOut);
        assert!(perm);
        assert_eq!(dsn, "5.3.0");
        assert!(text.starts_with("Command time limit exceeded"));
    }

    #[test]
    fn output_is_appended() {
        let f = command_outcome(CommandEnd::Exited(67), "x", "no such user").unwrap_err();
        assert_eq!(f.text, "user unknown. Command output: no such user");
    }
}
