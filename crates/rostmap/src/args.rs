//! Command-line parsing for rostmap / rostalias, and the man-page style help text.

use rostfix_config::getopt::{Getopt, GetoptError, Opt, Ordering};
use std::path::PathBuf;

/// What the command was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    /// `-a` or invoked as rostalias: aliases(5) syntax.
    pub aliases: bool,
    /// `-c DIR`.
    pub config_dir: Option<PathBuf>,
    /// `-q KEY` (`-` reads keys from stdin).
    pub query: Option<String>,
    /// `-d KEY`, repeatable.
    pub delete: Vec<String>,
    /// `-s`.
    pub show: bool,
    /// `-i`.
    pub incremental: bool,
    /// `--help`.
    pub help: bool,
    /// The tables, `type:name` or a bare file name.
    pub tables: Vec<String>,
}

/// Why the command line was refused (usage error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("-q, -d, -s and -i are mutually exclusive")]
    Exclusive,
}

/// Parse arguments (without argv[0]). Flags may be clustered (`-sN`) and option
/// values attached (`-qkey`) or separate, as getopt allows.
pub fn parse(argv: &[String], aliases: bool) -> Result<Args, ArgsError> {
    let mut a = Args {
        aliases,
        ..Args::default()
    };
    let words = argv.iter().cloned();
    for opt in Getopt::new("asiNnvwrophc:q:d:", words, Ordering::Permute) {
        match opt? {
            Opt::Long(word) if word == "--help" => a.help = true,
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Operand(table) => a.tables.push(table),
            Opt::Flag('h') => a.help = true,
            Opt::Flag('a') => a.aliases = true,
            Opt::Flag('s') => a.show = true,
            Opt::Flag('i') => a.incremental = true,
            // -N (include the null byte), -n, -v, -w, -r, -o, -p: accepted; the .rdb
            // format has no null-byte variants and the rest change nothing here.
            Opt::Flag('N' | 'n' | 'v' | 'w' | 'r' | 'o' | 'p') => {}
            Opt::Value('c', dir) => a.config_dir = Some(PathBuf::from(dir)),
            Opt::Value('q', key) => a.query = Some(key),
            Opt::Value('d', key) => a.delete.push(key),
            Opt::Flag(other) | Opt::Value(other, _) => {
                return Err(GetoptError::Unknown(other).into())
            }
        }
    }
    let modes = usize::from(a.query.is_some())
        + usize::from(!a.delete.is_empty())
        + usize::from(a.show)
        + usize::from(a.incremental);
    if modes > 1 {
        return Err(ArgsError::Exclusive);
    }
    Ok(a)
}

/// One-line usage for errors.
pub fn usage(prog: &str) -> String {
    format!("usage: {prog} [-Nains] [-c config_dir] [-d key] [-q key] [type:]file...")
}

/// The `--help` page.
pub fn help(prog: &str) -> String {
    format!(
        "NAME
    {prog} - build and query Rostfix lookup tables (postmap / postalias work-alike)

SYNOPSIS
    rostmap [-Nains] [-c config_dir] [-d key] [-q key] [type:]file...
    rostalias [-Nins] [-c config_dir] [-d key] [-q key] [[type:]file...]

DESCRIPTION
    Without -q, -d or -s, builds FILE.rdb from the text file FILE for every hash: or
    btree: table (the default type is default_database_type, normally hash). The
    .rdb file is written to a temporary name and renamed into place, so daemons
    never see a half-written table; they notice the new file within a second.
    For texthash:, regexp:, pcre:, cidr:, inline:, static: and unix: tables there is
    nothing to build: the file is only checked for syntax errors.

    Source syntax (postmap(5)): \"key value\" per line, # comments, lines starting
    with white space continue the previous line; keys are folded to lower case.
    With -a, or when run as rostalias, the source is in aliases(5) syntax:
    \"name: value, value\"; with no table named, rostalias uses alias_database.

OPTIONS
    -a         Aliases mode (postalias): aliases(5) source syntax, \"key: value\" for -s.
    -c DIR     Read main.cf from DIR instead of the default configuration directory.
    -d KEY     Delete KEY from the source FILE (the source is the truth) and rebuild
               FILE.rdb. May be repeated. Exit 0 if something was deleted, else 1.
    -i         Incremental: read source lines from standard input, append them to
               FILE and rebuild (existing keys keep their value, as with postmap).
    -N, -n     Accepted for compatibility; the .rdb format has no null-byte variants.
    -q KEY     Print the value of KEY from the first table that has it. With -q -,
               read keys from standard input and print \"key<TAB>value\" for each found.
               A proxy:type:name table is asked of the running proxymap
               ($queue_directory/private/proxymap) when its socket is reachable,
               and opened here otherwise.
    -s         Print every entry, \"key<TAB>value\" (\"key: value\" in aliases mode).
    --help     This text.

EXIT STATUS
    0   success; with -q, the key was found; with -d, something was deleted
    1   with -q, the key was not found; with -d, nothing was deleted
    2   an error: a missing or unreadable file, a syntax error, a stale .rdb
        (postmap exits 1 for these too; rostmap keeps them apart so that scripts
        can tell \"not found\" from \"broken table\")
    64  bad command-line arguments (EX_USAGE)

SEE ALSO
    postmap(1), postalias(1), aliases(5), regexp_table(5), cidr_table(5),
    the rostfix-maps crate documentation (.rdb file format)
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, ArgsError> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false)
    }

    #[test]
    fn options() {
        let a = p(&["-c", "/etc/x", "-qkey", "hash:/t"]).unwrap();
        assert_eq!(a.config_dir, Some(PathBuf::from("/etc/x")));
        assert_eq!(a.query.as_deref(), Some("key"));
        assert_eq!(a.tables, ["hash:/t"]);
        let a = p(&["-Na", "-d", "k1", "-d", "k2", "f"]).unwrap();
        assert!(a.aliases);
        assert_eq!(a.delete, ["k1", "k2"]);
        assert_eq!(p(&["-q"]), Err(GetoptError::MissingValue('q').into()));
        assert_eq!(p(&["-z"]), Err(GetoptError::Unknown('z').into()));
        assert_eq!(p(&["-s", "-q", "k", "f"]), Err(ArgsError::Exclusive));
        assert!(p(&["--help"]).unwrap().help);
    }
}
