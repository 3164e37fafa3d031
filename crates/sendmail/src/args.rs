//! Command-line parsing for `sendmail`, compatible with Postfix's sendmail: getopt-style
//! clusters (`-ti`, `-fsender` or `-f sender`), option parsing stops at the first
//! non-option (Postfix uses getopt with `+` on Linux), `--` ends the options.
//!
//! Modes: `-bm` (default, submit), `-bs` (SMTP on stdin/stdout), `-bp` (list the
//! queue), `-bi`/`-I` (newaliases), `-q` (flush), `-qRsite`/`-qSsite` (flush one site).
//! `-bd`, `-bv`, `-bl` are refused as "not supported"; a periodic `-qINTERVAL` is
//! ignored with a warning like Postfix does. DSN options (`-N`, `-R`, `-V`) and `-B`
//! are checked and passed to rostdrop; options that do not change what we do (`-odi`,
//! `-oem`, `-n`, ...) are accepted, and unknown `-o` settings are ignored with a warning.

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
    /// What to do (`-b`, `-q`, `-I`, or the name we were called by).
    pub mode: Mode,
    /// `-N`: DSN NOTIFY for every recipient, canonical (`NEVER` or
    /// `SUCCESS,FAILURE,DELAY` subset in that order); None when not given.
    pub notify: Option<String>,
    /// `-R`: DSN RET, `FULL` or `HDRS`.
    pub ret: Option<&'static str>,
    /// `-V`: DSN ENVID (printable ASCII, at most 100 characters).
    pub envid: Option<String>,
    /// `-B`: body type, `7BIT` or `8BITMIME`.
    pub body: Option<&'static str>,
    /// `-XV` (Some("")) or `-XVxy` (Some("xy")): VERP; the delimiters are checked
    /// against main.cf's verp_delimiter_filter when the message is submitted.
    pub verp: Option<String>,
}

/// The sendmail mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// `-bm`: read a message from standard input and submit it.
    #[default]
    Submit,
    /// `-bs`: an SMTP session on standard input and output.
    Smtp,
    /// `-bp`, or called as `mailq`: list the queue (rostqueue -p).
    ListQueue,
    /// `-bi`, `-I`, or called as `newaliases`: rebuild alias_database.
    NewAliases,
    /// `-q`: flush the queue (rostqueue -f).
    Flush,
    /// `-qRsite` / `-qSsite`: flush mail for one site (rostqueue -s site).
    FlushSite(String),
}

/// The outcome of a successful parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `--help`.
    Help,
    /// Submit a message (or another mode, see [`Options::mode`]).
    Submit(Box<Options>),
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("option requires an argument -- '{0}'")]
    MissingValue(char),
    #[error("invalid option -- '{0}'")]
    Unknown(char),
    /// A mode or option we know but do not implement (`-bd`, `-bv`, ...).
    #[error("{0} is not supported")]
    Unsupported(String),
    /// A DSN or body-type option with a value outside what RFC 3461 / 6152 allow.
    #[error("{0}")]
    BadValue(String),
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

/// Parses the arguments after the program name, as `sendmail`.
#[cfg(test)]
pub fn parse_args<I, S>(args: I) -> Result<Command, ArgsError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    parse_args_as(Mode::Submit, args)
}

/// The mode a program name implies: `mailq` lists the queue, `newaliases` rebuilds
/// the aliases, anything else is sendmail.
pub fn mode_for_name(argv0: &str) -> Mode {
    match argv0.rsplit('/').next().unwrap_or(argv0) {
        "mailq" => Mode::ListQueue,
        "newaliases" => Mode::NewAliases,
        _ => Mode::Submit,
    }
}

/// Parses the arguments after the program name, starting in `mode` (see
/// [`mode_for_name`]); `-b`/`-q`/`-I` change it.
pub fn parse_args_as<I, S>(mode: Mode, args: I) -> Result<Command, ArgsError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let mut opts = Options {
        mode,
        ..Options::default()
    };
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
                // -q with or without an attached value: the rest of the cluster.
                let rest: String = cluster[j + 1..].iter().collect();
                apply_q(
                    &mut opts,
                    &rest,
                    args.get(i + 1).map(String::as_str),
                    &mut i,
                )?;
                break;
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
    Ok(Command::Submit(Box::new(opts)))
}

fn apply_flag(opts: &mut Options, c: char) -> Result<(), ArgsError> {
    match c {
        't' => opts.extract = true,
        'i' => opts.ignore_dots = true,
        'v' => opts.verbose = true,
        // -I is newaliases.
        'I' => opts.mode = Mode::NewAliases,
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
        'b' => apply_b(opts, &value)?,
        'o' => apply_o(opts, &value),
        'N' => opts.notify = Some(parse_notify(&value)?),
        'R' => {
            opts.ret = Some(match value.to_ascii_lowercase().as_str() {
                "full" => "FULL",
                "hdrs" => "HDRS",
                _ => return Err(ArgsError::BadValue(format!("bad -R option: {value}"))),
            })
        }
        'V' => {
            if value.is_empty()
                || value.len() > 100
                || !value.bytes().all(|b| (0x21..0x7f).contains(&b))
            {
                return Err(ArgsError::BadValue(
                    "bad -V option: envid must be 1 to 100 printable ASCII characters".into(),
                ));
            }
            opts.envid = Some(value)
        }
        'B' => {
            opts.body = Some(match value.to_ascii_uppercase().as_str() {
                "7BIT" => "7BIT",
                "8BITMIME" => "8BITMIME",
                _ => return Err(ArgsError::BadValue(format!("bad -B option: {value}"))),
            })
        }
        'X' if value.starts_with('V') => opts.verp = Some(value[1..].to_string()),
        'X' | 'O' | 'L' => opts.warnings.push(format!("-{c} {value} option ignored")),
        // -e error mode, -h hop count, -p protocol: no effect here.
        _ => {}
    }
    Ok(())
}

/// `-bX`: the mode.
fn apply_b(opts: &mut Options, value: &str) -> Result<(), ArgsError> {
    opts.mode = match value {
        "m" => Mode::Submit,
        "s" => Mode::Smtp,
        "p" => Mode::ListQueue,
        "i" => Mode::NewAliases,
        // -bd (daemon), -bv (verify), -bl, -bh, -bH: not offered, as in Postfix.
        other => return Err(ArgsError::Unsupported(format!("-b{other}"))),
    };
    Ok(())
}

/// `-q`, `-qINTERVAL`, `-qRsite`, `-qSsite` (the site may be attached or the next
/// word; `i` is advanced past a separate one).
fn apply_q(
    opts: &mut Options,
    rest: &str,
    next: Option<&str>,
    i: &mut usize,
) -> Result<(), ArgsError> {
    if rest.is_empty() {
        opts.mode = Mode::Flush;
        return Ok(());
    }
    if let Some(site) = rest.strip_prefix('R').or_else(|| rest.strip_prefix('S')) {
        let site = if site.is_empty() {
            *i += 1;
            next.ok_or(ArgsError::MissingValue('q'))?.to_string()
        } else {
            site.to_string()
        };
        opts.mode = Mode::FlushSite(site);
        return Ok(());
    }
    if rest.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        // A queue-run interval: master and qmgr run the queue; Postfix ignores it too.
        opts.warnings.push(format!(
            "-q{rest} option ignored: the queue manager runs the queue"
        ));
        opts.mode = Mode::Flush;
        return Ok(());
    }
    Err(ArgsError::Unsupported(format!("-q{rest}")))
}

/// `-N never` or `-N success,delay,failure` (any order, any case) -> canonical NOTIFY.
pub fn parse_notify(value: &str) -> Result<String, ArgsError> {
    let bad = || ArgsError::BadValue(format!("bad -N option: {value}"));
    let mut flags = [false; 3];
    let mut never = false;
    for word in value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "never" => never = true,
            "success" => flags[0] = true,
            "failure" => flags[1] = true,
            "delay" => flags[2] = true,
            _ => return Err(bad()),
        }
    }
    let any = flags.iter().any(|f| *f);
    if never && any || !never && !any {
        return Err(bad());
    }
    if never {
        return Ok("NEVER".to_string());
    }
    let names = ["SUCCESS", "FAILURE", "DELAY"];
    Ok(names
        .iter()
        .zip(flags)
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(","))
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
            Ok(Command::Submit(o)) => *o,
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
    fn xv_is_verp_and_other_x_values_are_ignored() {
        assert_eq!(submit(&["-XV", "r"]).verp.as_deref(), Some(""));
        assert_eq!(submit(&["-XV-=", "r"]).verp.as_deref(), Some("-="));
        assert_eq!(submit(&["-X", "V+=", "r"]).verp.as_deref(), Some("+="));
        let o = submit(&["-X", "/tmp/log", "r"]);
        assert_eq!(o.verp, None);
        assert_eq!(o.warnings, vec!["-X /tmp/log option ignored"]);
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
    fn modes() {
        assert_eq!(submit(&["-bs"]).mode, Mode::Smtp);
        assert_eq!(submit(&["-bp"]).mode, Mode::ListQueue);
        assert_eq!(submit(&["-b", "i"]).mode, Mode::NewAliases);
        assert_eq!(submit(&["-I"]).mode, Mode::NewAliases);
        assert_eq!(submit(&["-q"]).mode, Mode::Flush);
        let o = submit(&["-q30m"]);
        assert_eq!(o.mode, Mode::Flush);
        assert_eq!(o.warnings.len(), 1);
        assert_eq!(
            submit(&["-qRexample.org"]).mode,
            Mode::FlushSite("example.org".into())
        );
        assert_eq!(
            submit(&["-qS", "example.org"]).mode,
            Mode::FlushSite("example.org".into())
        );
        assert_eq!(submit(&["-bm", "x"]).mode, Mode::Submit);
        for (args, what) in [(&["-bd"][..], "-bd"), (&["-bv", "x"][..], "-bv")] {
            assert_eq!(
                parse_args(args.iter().copied()),
                Err(ArgsError::Unsupported(what.into()))
            );
        }
        assert_eq!(mode_for_name("/usr/bin/mailq"), Mode::ListQueue);
        assert_eq!(mode_for_name("newaliases"), Mode::NewAliases);
        assert_eq!(mode_for_name("sendmail"), Mode::Submit);
        match parse_args_as(Mode::ListQueue, ["-v"]) {
            Ok(Command::Submit(o)) => assert_eq!(o.mode, Mode::ListQueue),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dsn_options() {
        let o = submit(&[
            "-N",
            "delay,Success",
            "-R",
            "hdrs",
            "-V",
            "id-1",
            "-B8bitmime",
            "r",
        ]);
        assert_eq!(o.notify.as_deref(), Some("SUCCESS,DELAY"));
        assert_eq!(o.ret, Some("HDRS"));
        assert_eq!(o.envid.as_deref(), Some("id-1"));
        assert_eq!(o.body, Some("8BITMIME"));
        assert_eq!(submit(&["-Nnever", "r"]).notify.as_deref(), Some("NEVER"));
        for bad in [
            &["-N", "never,delay"][..],
            &["-N", "sometimes"][..],
            &["-R", "most"][..],
            &["-V", "a b"][..],
            &["-B", "binary"][..],
        ] {
            assert!(
                matches!(parse_args(bad.iter().copied()), Err(ArgsError::BadValue(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors() {
        assert_eq!(parse_args(["-f"]), Err(ArgsError::MissingValue('f')));
        assert_eq!(parse_args(["-k"]), Err(ArgsError::Unknown('k')));
        assert_eq!(parse_args(["--help"]), Ok(Command::Help));
    }
}
