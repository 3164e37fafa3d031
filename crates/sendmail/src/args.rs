//! Command-line parsing for `sendmail`, compatible with Postfix's sendmail: getopt-style
//! clusters (`-ti`, `-fsender` or `-f sender`), option parsing stops at the first
//! non-option (Postfix uses getopt with `+` on Linux), `--` ends the options.
//!
//! Options that make sense only for a full sendmail (modes `-bs`, `-bp`, `-bi`, queue
//! runs `-q`, `-I`) are refused as "not supported yet"; options that do not change
//! what we do (`-odi`, `-oem`, `-B 8BITMIME`, `-n`, ...) are accepted, and unknown `-o`
//! settings are ignored with a warning.

use std::path::PathBuf;

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-C DIR`: configuration directory.
    pub config_dir: Option<PathBuf>,
    /// `-t`: take recipients from To:, Cc:, Bcc: headers.
    pub extract: bool,
    /// `-f SENDER` / `-r SENDER`: envelope sender as given (angle brackets removed later).
    pub sender: Option<String>,
    /// `-F NAME`: full name for a From: header we add.
    pub full_name: Option<String>,
    /// `-i` / `-oi`: a line with a single `.` does not end the message.
    pub ignore_dots: bool,
    /// `-v`.
    pub verbose: bool,
    /// Command-line recipient arguments (each may hold an address list).
    pub recipients: Vec<String>,
    /// Warnings to print (ignored options), already phrased.
    pub warnings: Vec<String>,
}

/// The outcome of a successful parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `--help`.
    Help,
    /// Submit a message.
    Submit(Options),
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("option requires an argument -- '{0}'")]
    MissingValue(char),
    #[error("invalid option -- '{0}'")]
    Unknown(char),
    /// A mode or option we know but do not implement (`-bs`, `-bp`, `-q`, ...).
    #[error("{0} is not supported yet")]
    Unsupported(String),
}

/// Options that take a value (Postfix's getopt string `B:C:F:L:N:O:R:V:X:b:e:f:h:o:p:r:`).
fn takes_value(c: char) -> bool {
    matches!(
        c,
        'B' | 'C'
            | 'F'
            | 'L'
            | 'N'
            | 'O'
            | 'R'
            | 'V'
            | 'X'
            | 'b'
            | 'e'
            | 'f'
            | 'h'
            | 'o'
            | 'p'
            | 'r'
    )
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Command, ArgsError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        // Walk one cluster of single-letter options.
        let cluster: Vec<char> = arg[1..].chars().collect();
        let mut j = 0;
        while j < cluster.len() {
            let c = cluster[j];
            if c == 'q' {
                // -q with or without an attached interval: a queue run.
                return Err(ArgsError::Unsupported(format!(
                    "-{}",
                    cluster[j..].iter().collect::<String>()
                )));
            }
            if takes_value(c) {
                let value: String = if j + 1 < cluster.len() {
                    cluster[j + 1..].iter().collect()
                } else {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.clone(),
                        None => return Err(ArgsError::MissingValue(c)),
                    }
                };
                apply_valued(&mut opts, c, value)?;
                break;
            }
            apply_flag(&mut opts, c)?;
            j += 1;
        }
        i += 1;
    }
    opts.recipients
        .extend(args[i.min(args.len())..].iter().cloned());
    Ok(Command::Submit(opts))
}

fn apply_flag(opts: &mut Options, c: char) -> Result<(), ArgsError> {
    match c {
        't' => opts.extract = true,
        'i' => opts.ignore_dots = true,
        'v' => opts.verbose = true,
        // -I is newaliases.
        'I' => return Err(ArgsError::Unsupported("-I".into())),
        // Accepted and meaningless here, as in Postfix: -G (gateway), -U (initial
        // submission), -c, -m (me too), -n (no aliasing), -x.
        'G' | 'U' | 'c' | 'm' | 'n' | 'x' => {}
        other => return Err(ArgsError::Unknown(other)),
    }
    Ok(())
}

fn apply_valued(opts: &mut Options, c: char, value: String) -> Result<(), ArgsError> {
    match c {
        'C' => opts.config_dir = Some(PathBuf::from(value)),
        'f' | 'r' => opts.sender = Some(value),
        'F' => opts.full_name = Some(value),
        'b' if value != "m" => return Err(ArgsError::Unsupported(format!("-b{value}"))),
        'o' => apply_o(opts, &value),
        'N' | 'R' | 'V' => opts.warnings.push(format!(
            "-{c} option ignored: DSN options are not supported yet"
        )),
        'X' | 'O' | 'L' => opts.warnings.push(format!("-{c} {value} option ignored")),
        // -B body type, -e error mode, -h hop count, -p protocol: no effect here.
        _ => {}
    }
    Ok(())
}

/// `-oX...` settings. `-oi` matters; delivery mode (`-od*`), error mode (`-oe*`),
/// `-om`, `-oo`, `-o7`/`-o8` are sendmail tuning with no meaning for us.
fn apply_o(opts: &mut Options, value: &str) {
    match value.chars().next() {
        Some('i') => opts.ignore_dots = true,
        Some('d' | 'e' | 'm' | 'o' | '7' | '8') => {}
        _ => opts.warnings.push(format!("-o{value} option ignored")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(args: &[&str]) -> Options {
        match parse_args(args.iter().copied()) {
            Ok(Command::Submit(o)) => o,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sender_attached_or_separate() {
        assert_eq!(submit(&["-f", "a@b", "x"]).sender.as_deref(), Some("a@b"));
        assert_eq!(submit(&["-fa@b", "x"]).sender.as_deref(), Some("a@b"));
        assert_eq!(submit(&["-r", "c@d", "x"]).sender.as_deref(), Some("c@d"));
    }

    #[test]
    fn clusters_and_flags() {
        let o = submit(&["-ti", "-F", "Joe User", "-C/etc/x", "rcpt"]);
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.full_name.as_deref(), Some("Joe User"));
        assert_eq!(o.config_dir, Some(PathBuf::from("/etc/x")));
        assert_eq!(o.recipients, vec!["rcpt"]);
        // A value inside a cluster takes the rest of the cluster.
        let o = submit(&["-tfme@x", "r"]);
        assert!(o.extract);
        assert_eq!(o.sender.as_deref(), Some("me@x"));
    }

    #[test]
    fn o_options() {
        let o = submit(&["-oi", "-odi", "-oem", "r"]);
        assert!(o.ignore_dots);
        assert!(o.warnings.is_empty());
        let o = submit(&["-oXfoo", "r"]);
        assert!(!o.ignore_dots);
        assert_eq!(o.warnings, vec!["-oXfoo option ignored"]);
    }

    #[test]
    fn options_stop_at_first_recipient_and_double_dash() {
        let o = submit(&["a@b", "-t"]);
        assert!(!o.extract);
        assert_eq!(o.recipients, vec!["a@b", "-t"]);
        let o = submit(&["-i", "--", "-weird"]);
        assert_eq!(o.recipients, vec!["-weird"]);
        assert!(submit(&["-t"]).recipients.is_empty());
    }

    #[test]
    fn unsupported_modes() {
        for (args, what) in [
            (&["-bs"][..], "-bs"),
            (&["-bp"][..], "-bp"),
            (&["-b", "i"][..], "-bi"),
            (&["-q"][..], "-q"),
            (&["-q30m"][..], "-q30m"),
            (&["-I"][..], "-I"),
        ] {
            assert_eq!(
                parse_args(args.iter().copied()),
                Err(ArgsError::Unsupported(what.into()))
            );
        }
        assert!(matches!(parse_args(["-bm", "x"]), Ok(Command::Submit(_))));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_args(["-f"]), Err(ArgsError::MissingValue('f')));
        assert_eq!(parse_args(["-k"]), Err(ArgsError::Unknown('k')));
        assert_eq!(parse_args(["--help"]), Ok(Command::Help));
    }
}
