//! Command-line parsing: postconf's options, clustered like getopt (`-nx`, `-MX`,
//! `-Mf`, `-Me`, `-M#`, `-PX`).

use rostfix_config::getopt::{Getopt, GetoptError, Opt, Ordering};
use std::path::PathBuf;

/// What the command was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Show main.cf parameters (default, -n, -d, -h, -x).
    Show,
    /// -e or `name=value` arguments: set parameters in main.cf.
    Edit,
    /// -X: remove parameters from main.cf.
    Remove,
    /// -#: comment out parameters in main.cf.
    CommentOut,
    /// -M: show master.cf entries.
    MasterShow,
    /// -M service/type='entry': replace or add master.cf entries.
    MasterEdit,
    /// -MX service/type: delete master.cf entries.
    MasterRemove,
    /// -M# service/type: comment out master.cf entries.
    MasterCommentOut,
    /// -F [service/type/field...]: show master.cf fields.
    FieldShow,
    /// -F service/type/field=value: change a master.cf field.
    FieldEdit,
    /// -P [service/type/name...]: show master.cf -o parameters.
    ParamShow,
    /// -P service/type/name=value: set a master.cf -o parameter.
    ParamEdit,
    /// -PX service/type/name: remove a master.cf -o parameter.
    ParamRemove,
    /// -l: mailbox lock methods.
    LockTypes,
    /// -m: lookup table types.
    MapTypes,
    /// -a: SASL server types.
    SaslServerTypes,
    /// -A: SASL client types.
    SaslClientTypes,
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_dir: Option<PathBuf>,
    pub mode: Mode,
    /// -n: explicit main.cf settings only.
    pub explicit_only: bool,
    /// -d: defaults instead of main.cf's values.
    pub defaults: bool,
    /// -h: values without `name = `.
    pub values_only: bool,
    /// -x: expand `$name` in values.
    pub expand: bool,
    /// -f (with -M): fold long master.cf entries like postconf -Mf.
    pub fold: bool,
    /// Parameter names, `name=value` pairs, or master.cf service selectors.
    pub args: Vec<String>,
}

/// The command line asked for --help, or for work.
pub type Command = rostfix_config::getopt::Command<Options>;

/// Why the command line was refused (usage error, exit 64).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadArgument(String),
}

/// Parses the arguments after the program name. Options may follow operands, as with
/// GNU getopt; `--` ends the options.
pub fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Command, ArgsError> {
    let mut config_dir = None;
    let (mut edit, mut remove, mut comment, mut master) = (false, false, false, false);
    let (mut fields, mut params, mut fold) = (false, false, false);
    let mut info: Option<Mode> = None;
    let (mut explicit_only, mut defaults, mut values_only, mut expand) =
        (false, false, false, false);
    let mut args = Vec::new();
    for opt in Getopt::new("c:eX#MFPflmaAndhx", argv, Ordering::Permute) {
        let flag = match opt? {
            Opt::Operand(arg) => {
                args.push(arg);
                continue;
            }
            Opt::Long(word) if word == "--help" => return Ok(Command::Help),
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Value('c', dir) => {
                config_dir = Some(PathBuf::from(dir));
                continue;
            }
            Opt::Flag(flag) => flag,
            Opt::Value(other, _) => return Err(GetoptError::Unknown(other).into()),
        };
        match flag {
            'e' => edit = true,
            'X' => remove = true,
            '#' => comment = true,
            'M' => master = true,
            'F' => fields = true,
            'P' => params = true,
            'f' => fold = true,
            'l' => info = Some(Mode::LockTypes),
            'm' => info = Some(Mode::MapTypes),
            'a' => info = Some(Mode::SaslServerTypes),
            'A' => info = Some(Mode::SaslClientTypes),
            'n' => explicit_only = true,
            'd' => defaults = true,
            'h' => values_only = true,
            'x' => expand = true,
            other => return Err(GetoptError::Unknown(other).into()),
        }
    }
    let mode = if let Some(info) = info {
        if edit || remove || comment || master || fields || params || !args.is_empty() {
            return Err(ArgsError::Conflict(
                "-l, -m, -a and -A take no other option or argument".into(),
            ));
        }
        info
    } else if fields || params {
        choose_field_mode(fields, params, edit, remove, comment, master, &args)?
    } else {
        choose_mode(edit, remove, comment, master, &args)?
    };
    if fold && mode != Mode::MasterShow {
        return Err(ArgsError::Conflict("-f applies only to -M".into()));
    }
    let shows = matches!(
        mode,
        Mode::Show | Mode::MasterShow | Mode::FieldShow | Mode::ParamShow
    );
    if !shows && (explicit_only || defaults || values_only || expand) {
        return Err(ArgsError::Conflict(
            "-n, -d, -h and -x only apply when showing parameters".into(),
        ));
    }
    if explicit_only && defaults {
        return Err(ArgsError::Conflict("-n and -d cannot be combined".into()));
    }
    let takes_args = !shows
        && !matches!(
            mode,
            Mode::LockTypes | Mode::MapTypes | Mode::SaslServerTypes | Mode::SaslClientTypes
        );
    if takes_args && args.is_empty() {
        return Err(ArgsError::BadArgument(
            "nothing to change: give parameter names or settings".into(),
        ));
    }
    Ok(Command::Run(Options {
        config_dir,
        mode,
        explicit_only,
        defaults,
        values_only,
        expand,
        fold,
        args,
    }))
}

/// -F and -P: show, edit (`=` in the arguments or -e), or -PX remove.
fn choose_field_mode(
    fields: bool,
    params: bool,
    edit: bool,
    remove: bool,
    comment: bool,
    master: bool,
    args: &[String],
) -> Result<Mode, ArgsError> {
    if fields && params || master || comment {
        return Err(ArgsError::Conflict(
            "-F and -P combine only with -e (and -P with -X)".into(),
        ));
    }
    let any_setting = args.iter().any(|arg| arg.contains('='));
    if remove {
        if fields || any_setting {
            return Err(ArgsError::BadArgument(
                "-PX takes service/type/name, not settings (-FX is not possible)".into(),
            ));
        }
        return Ok(Mode::ParamRemove);
    }
    if edit || any_setting {
        if let Some(bad) = args.iter().find(|arg| !arg.contains('=')) {
            return Err(ArgsError::BadArgument(format!(
                "edit needs service/type/name=value, got \"{bad}\""
            )));
        }
        return Ok(if fields {
            Mode::FieldEdit
        } else {
            Mode::ParamEdit
        });
    }
    Ok(if fields {
        Mode::FieldShow
    } else {
        Mode::ParamShow
    })
}

/// Works out the mode from the flags and operands, refusing mixtures.
fn choose_mode(
    edit: bool,
    remove: bool,
    comment: bool,
    master: bool,
    args: &[String],
) -> Result<Mode, ArgsError> {
    let any_setting = args.iter().any(|arg| arg.contains('='));
    if master {
        if edit && (comment || remove) || comment && remove {
            return Err(ArgsError::Conflict(
                "-M combines with one of -e, -X and -#".into(),
            ));
        }
        if comment {
            if any_setting {
                return Err(ArgsError::BadArgument(
                    "-M# takes service/type names, not entries".into(),
                ));
            }
            return Ok(Mode::MasterCommentOut);
        }
        if edit && !any_setting {
            return Err(ArgsError::BadArgument(
                "-Me needs service/type=entry".into(),
            ));
        }
        if remove {
            if any_setting {
                return Err(ArgsError::BadArgument(
                    "-MX takes service/type names, not entries".into(),
                ));
            }
            return Ok(Mode::MasterRemove);
        }
        if any_setting {
            if let Some(bad) = args.iter().find(|arg| !arg.contains('=')) {
                return Err(ArgsError::BadArgument(format!(
                    "-M edit needs service/type=entry, got \"{bad}\""
                )));
            }
            return Ok(Mode::MasterEdit);
        }
        return Ok(Mode::MasterShow);
    }
    match (edit || any_setting, remove, comment) {
        (true, false, false) => {
            if let Some(bad) = args.iter().find(|arg| !arg.contains('=')) {
                return Err(ArgsError::BadArgument(format!(
                    "-e needs name=value, got \"{bad}\""
                )));
            }
            Ok(Mode::Edit)
        }
        (false, true, false) => Ok(Mode::Remove),
        (false, false, true) => Ok(Mode::CommentOut),
        (false, false, false) => Ok(Mode::Show),
        _ => Err(ArgsError::Conflict(
            "choose one of -e (or name=value), -X and -#".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, ArgsError> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn show_flags_cluster_and_permute() {
        let options = run(&["-nx", "myhostname", "-c", "/tmp/c", "-h"]);
        assert_eq!(options.mode, Mode::Show);
        assert!(
            options.explicit_only && options.expand && options.values_only && !options.defaults
        );
        assert_eq!(options.config_dir, Some(PathBuf::from("/tmp/c")));
        assert_eq!(options.args, vec!["myhostname"]);
        assert_eq!(
            run(&["-c/etc/x", "-d"]).config_dir,
            Some(PathBuf::from("/etc/x"))
        );
    }

    #[test]
    fn edit_modes() {
        assert_eq!(run(&["-e", "a=1", "b = 2"]).mode, Mode::Edit);
        assert_eq!(run(&["a=1"]).mode, Mode::Edit);
        assert_eq!(run(&["-X", "a", "b"]).mode, Mode::Remove);
        assert_eq!(run(&["-#", "a"]).mode, Mode::CommentOut);
        assert_eq!(run(&["-M"]).mode, Mode::MasterShow);
        assert_eq!(run(&["-M", "smtp/inet"]).mode, Mode::MasterShow);
        assert_eq!(
            run(&["-M", "smtp/inet=smtp inet n - n - - smtpd"]).mode,
            Mode::MasterEdit
        );
        assert_eq!(run(&["-MX", "smtp/inet"]).mode, Mode::MasterRemove);
        assert_eq!(run(&["-M", "-X", "smtp/inet"]).mode, Mode::MasterRemove);
        assert_eq!(run(&["--", "-weird"]).args, vec!["-weird"]);
        assert_eq!(
            run(&["-Me", "smtp/inet=smtp inet n - n - - smtpd"]).mode,
            Mode::MasterEdit
        );
        assert_eq!(run(&["-M#", "smtp/inet"]).mode, Mode::MasterCommentOut);
        let o = run(&["-Mf"]);
        assert!(o.fold && o.mode == Mode::MasterShow);
    }

    #[test]
    fn field_and_parameter_modes() {
        assert_eq!(run(&["-F"]).mode, Mode::FieldShow);
        assert_eq!(run(&["-F", "smtp/inet/chroot"]).mode, Mode::FieldShow);
        assert_eq!(run(&["-F", "smtp/inet/chroot=n"]).mode, Mode::FieldEdit);
        assert_eq!(run(&["-Fe", "smtp/inet/chroot=n"]).mode, Mode::FieldEdit);
        assert_eq!(run(&["-P"]).mode, Mode::ParamShow);
        assert_eq!(run(&["-P", "s/inet/a=b"]).mode, Mode::ParamEdit);
        assert_eq!(run(&["-PX", "s/inet/a"]).mode, Mode::ParamRemove);
        assert_eq!(run(&["-l"]).mode, Mode::LockTypes);
        assert_eq!(run(&["-m"]).mode, Mode::MapTypes);
        assert_eq!(run(&["-a"]).mode, Mode::SaslServerTypes);
        assert_eq!(run(&["-A"]).mode, Mode::SaslClientTypes);
    }

    #[test]
    fn usage_errors() {
        assert_eq!(parse(&["-q"]), Err(GetoptError::Unknown('q').into()));
        assert_eq!(parse(&["-c"]), Err(GetoptError::MissingValue('c').into()));
        assert_eq!(
            parse(&["--verbose"]),
            Err(GetoptError::UnknownLong("--verbose".into()).into())
        );
        assert!(matches!(
            parse(&["-e", "a=1", "b"]),
            Err(ArgsError::BadArgument(_))
        ));
        assert!(matches!(
            parse(&["-e", "-X", "a"]),
            Err(ArgsError::Conflict(_))
        ));
        assert!(matches!(parse(&["-X"]), Err(ArgsError::BadArgument(_))));
        assert!(matches!(parse(&["-Xn", "a"]), Err(ArgsError::Conflict(_))));
        assert!(matches!(parse(&["-nd"]), Err(ArgsError::Conflict(_))));
        assert!(matches!(
            parse(&["-MeX", "a=b"]),
            Err(ArgsError::Conflict(_))
        ));
        assert!(matches!(parse(&["-nf"]), Err(ArgsError::Conflict(_))));
        assert!(matches!(parse(&["-lm"]), Ok(Command::Run(_))));
        assert!(matches!(parse(&["-m", "x"]), Err(ArgsError::Conflict(_))));
        assert!(matches!(
            parse(&["-FX", "a/b/c"]),
            Err(ArgsError::BadArgument(_))
        ));
        assert!(matches!(parse(&["-FP"]), Err(ArgsError::Conflict(_))));
        assert!(matches!(
            parse(&["-MX", "a/b=c"]),
            Err(ArgsError::BadArgument(_))
        ));
        assert_eq!(parse(&["-n", "--help"]), Ok(Command::Help));
    }
}
