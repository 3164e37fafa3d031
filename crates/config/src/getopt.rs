//! getopt(3)-style scanning of a command line, shared by the commands (rostconf,
//! rostqueue, rostsuper, rostdrop, rostmap) so that every one of them clusters flags
//! (`-vf`), takes option values attached or separate (`-cDIR`, `-c DIR`), honours `--`
//! and words its usage errors the same way. What an option means stays with each
//! command: this only splits the words, and ends the process the common way for
//! `--help` and usage errors ([`options_or_exit`]).

use std::fmt;

/// sysexits' EX_USAGE: the exit status of every usage error.
pub const EX_USAGE: i32 = 64;

/// What a command line asked for: the manual page, or work with these options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<T> {
    Help,
    Run(T),
}

/// The options of a parsed command line, or the end of the process as Postfix's
/// commands end it: `--help` prints `manual` and exits 0, a usage error goes to
/// [`usage_exit`].
pub fn options_or_exit<T, E: fmt::Display>(
    parsed: Result<Command<T>, E>,
    prog: &str,
    manual: &str,
    usage: &str,
) -> T {
    match parsed {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{manual}");
            std::process::exit(0);
        }
        Err(error) => usage_exit(prog, &error, usage),
    }
}

/// Prints `PROG: ERROR` and the usage line to standard error and exits EX_USAGE.
pub fn usage_exit(prog: &str, error: &dyn fmt::Display, usage: &str) -> ! {
    eprintln!("{prog}: {error}");
    eprintln!("{usage}");
    std::process::exit(EX_USAGE);
}

/// One step of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    /// A letter that takes no value.
    Flag(char),
    /// A letter that takes a value, with it.
    Value(char, String),
    /// A word that is not an option (`-` alone is one, as in getopt).
    Operand(String),
    /// A `--name` word, whole; each command knows which ones it accepts.
    Long(String),
}

/// Why a word was refused: the text is glibc getopt's, which Postfix's commands print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// A letter the command does not know.
    Unknown(char),
    /// A letter that takes a value came last on the command line.
    MissingValue(char),
    /// A `--name` the command does not know.
    UnknownLong(String),
}

impl fmt::Display for GetoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetoptError::Unknown(c) => write!(f, "invalid option -- '{c}'"),
            GetoptError::MissingValue(c) => write!(f, "option requires an argument -- '{c}'"),
            GetoptError::UnknownLong(word) => write!(f, "unrecognized option '{word}'"),
        }
    }
}

impl std::error::Error for GetoptError {}

/// Where options end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// GNU's default: options may follow operands; only `--` ends them.
    Permute,
    /// POSIX: the first operand ends the options (the rest may start with `-`, as
    /// recipient addresses may).
    StopAtOperand,
}

/// The scanner: an iterator of [`Opt`]s over the words after the program name.
///
/// `spec` lists the letters as getopt's optstring does: a letter followed by `:` takes
/// a value. After an error the iterator should not be used further (getopt's callers
/// stop at the first usage error, and so do ours).
pub struct Getopt<I: Iterator<Item = String>> {
    spec: &'static str,
    words: I,
    ordering: Ordering,
    /// The word being taken apart and the byte offset of its next letter.
    cluster: Option<(String, usize)>,
    /// After `--` (or, with StopAtOperand, the first operand): all words are operands.
    only_operands: bool,
}

impl<I: Iterator<Item = String>> Getopt<I> {
    /// Scans `words` (the arguments after the program name) with the letters of `spec`.
    pub fn new(
        spec: &'static str,
        words: impl IntoIterator<IntoIter = I>,
        ordering: Ordering,
    ) -> Self {
        Getopt {
            spec,
            words: words.into_iter(),
            ordering,
            cluster: None,
            only_operands: false,
        }
    }

    /// Whether `letter` is an option, and whether it takes a value.
    fn lookup(&self, letter: char) -> Option<bool> {
        if letter == ':' {
            return None;
        }
        let at = self.spec.find(letter)?;
        Some(self.spec[at + letter.len_utf8()..].starts_with(':'))
    }

    /// The letter at byte `at` of `word` (a cluster, `at` inside it), with its value
    /// when it takes one; the rest of the cluster is kept for the next call.
    fn letter_at(&mut self, word: String, at: usize) -> Result<Opt, GetoptError> {
        let letter = word[at..].chars().next().unwrap_or('-');
        let after = at + letter.len_utf8();
        match self.lookup(letter) {
            None => Err(GetoptError::Unknown(letter)),
            Some(false) => {
                if after < word.len() {
                    self.cluster = Some((word, after));
                }
                Ok(Opt::Flag(letter))
            }
            Some(true) if after < word.len() => Ok(Opt::Value(letter, word[after..].to_string())),
            Some(true) => match self.words.next() {
                Some(value) => Ok(Opt::Value(letter, value)),
                None => Err(GetoptError::MissingValue(letter)),
            },
        }
    }
}

impl<I: Iterator<Item = String>> Iterator for Getopt<I> {
    type Item = Result<Opt, GetoptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((word, at)) = self.cluster.take() {
            return Some(self.letter_at(word, at));
        }
        let mut word = self.words.next()?;
        if word == "--" && !self.only_operands {
            self.only_operands = true;
            word = self.words.next()?;
        }
        if self.only_operands || word == "-" || !word.starts_with('-') {
            if self.ordering == Ordering::StopAtOperand {
                self.only_operands = true;
            }
            return Some(Ok(Opt::Operand(word)));
        }
        if word.starts_with("--") {
            return Some(Ok(Opt::Long(word)));
        }
        Some(self.letter_at(word, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(
        spec: &'static str,
        words: &[&str],
        ordering: Ordering,
    ) -> Vec<Result<Opt, GetoptError>> {
        Getopt::new(spec, words.iter().map(|w| w.to_string()), ordering).collect()
    }

    fn ok(spec: &'static str, words: &[&str]) -> Vec<Opt> {
        scan(spec, words, Ordering::Permute)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("no usage error")
    }

    fn value(c: char, v: &str) -> Opt {
        Opt::Value(c, v.to_string())
    }

    fn operand(w: &str) -> Opt {
        Opt::Operand(w.to_string())
    }

    #[test]
    fn clustered_flags() {
        assert_eq!(
            ok("vfp", &["-vf", "-p"]),
            [Opt::Flag('v'), Opt::Flag('f'), Opt::Flag('p')]
        );
    }

    #[test]
    fn values_attached_separate_and_ending_a_cluster() {
        assert_eq!(ok("c:v", &["-c", "/etc/x"]), [value('c', "/etc/x")]);
        assert_eq!(ok("c:v", &["-c/etc/x"]), [value('c', "/etc/x")]);
        assert_eq!(
            ok("c:v", &["-vc", "/d"]),
            [Opt::Flag('v'), value('c', "/d")]
        );
        // The rest of the word is the value even when it looks like flags.
        assert_eq!(ok("c:v", &["-cv"]), [value('c', "v")]);
        // A separate value is taken as it is, even an empty word or one with a dash.
        assert_eq!(
            ok("f:", &["-f", "", "-f", "-x"]),
            [value('f', ""), value('f', "-x")]
        );
    }

    #[test]
    fn double_dash_ends_options() {
        assert_eq!(
            ok("v", &["-v", "--", "-v", "--"]),
            [Opt::Flag('v'), operand("-v"), operand("--")]
        );
        assert_eq!(ok("v", &["--"]), []);
    }

    #[test]
    fn operands_permuted_or_ending_options() {
        assert_eq!(
            ok("v", &["a", "-v", "-", "b"]),
            [operand("a"), Opt::Flag('v'), operand("-"), operand("b")]
        );
        let stop: Vec<Opt> = scan("v", &["a", "-v", "-x"], Ordering::StopAtOperand)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("no usage error");
        assert_eq!(stop, [operand("a"), operand("-v"), operand("-x")]);
    }

    #[test]
    fn long_words_are_left_to_the_command() {
        assert_eq!(
            ok("v", &["--help", "-v"]),
            [Opt::Long("--help".into()), Opt::Flag('v')]
        );
    }

    #[test]
    fn unknown_letters_and_missing_values() {
        assert_eq!(
            scan("v", &["-vq"], Ordering::Permute)[1],
            Err(GetoptError::Unknown('q'))
        );
        assert_eq!(
            scan("v:", &["-:"], Ordering::Permute)[0],
            Err(GetoptError::Unknown(':'))
        );
        assert_eq!(
            scan("c:", &["-c"], Ordering::Permute)[0],
            Err(GetoptError::MissingValue('c'))
        );
        assert_eq!(
            GetoptError::Unknown('q').to_string(),
            "invalid option -- 'q'"
        );
        assert_eq!(
            GetoptError::MissingValue('c').to_string(),
            "option requires an argument -- 'c'"
        );
        assert_eq!(
            GetoptError::UnknownLong("--list".into()).to_string(),
            "unrecognized option '--list'"
        );
    }
}
