//! master.cf: the service table.
//!
//! Each logical line has eight or more white-space separated columns: service, type,
//! private, unpriv, chroot, wakeup, maxproc, then the command and its arguments. In
//! the command part a word starting with `{` runs to its matching `}` and is one
//! argument (Postfix 3's `-o { name = value }`), so it may hold white space.

use crate::lines::logical_lines;
use crate::ConfigError;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// master.cf's type column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceType {
    Inet,
    Unix,
    UnixDgram,
    Fifo,
    Pass,
}

impl ServiceType {
    /// The name used in master.cf.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Inet => "inet",
            ServiceType::Unix => "unix",
            ServiceType::UnixDgram => "unix-dgram",
            ServiceType::Fifo => "fifo",
            ServiceType::Pass => "pass",
        }
    }

    /// Parses a type column; None for anything Postfix does not know.
    pub fn parse(text: &str) -> Option<ServiceType> {
        Some(match text {
            "inet" => ServiceType::Inet,
            "unix" => ServiceType::Unix,
            "unix-dgram" => ServiceType::UnixDgram,
            "fifo" => ServiceType::Fifo,
            "pass" => ServiceType::Pass,
            _ => return None,
        })
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// master.cf's wakeup column when not `-`/`0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    pub seconds: u32,
    /// `N?`: wake only after the service was used once.
    pub after_first_use: bool,
}

/// One master.cf entry, with `-` columns already replaced by their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service column, e.g. `smtp`, `127.0.0.1:2525`, `[::1]:2525`, `submission`.
    pub name: String,
    pub service_type: ServiceType,
    pub private: bool,
    pub unpriv: bool,
    pub chroot: bool,
    pub wakeup: Option<Wakeup>,
    /// 0 means unlimited; `-` is default_process_limit.
    pub maxproc: u32,
    /// The command (first word of the command column), e.g. `smtpd`.
    pub command: String,
    /// The remaining words, with `-o` overrides kept as written (`-o`, `name=value`).
    pub args: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// Splits `name = value` (either side trimmed); None without `=` or name.
fn split_override(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), value.trim().to_string()))
}

/// The `name = value` of one `-o` argument, braced or not.
fn override_of(arg: &str) -> Option<(String, String)> {
    match arg
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
    {
        Some(inner) => split_override(inner),
        None => split_override(arg),
    }
}

impl ServiceEntry {
    /// The `-o name=value` overrides among `args`, in order (also `-o { name = value }`
    /// and the getopt form `-oname=value`).
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            if arg == "-o" {
                if let Some(pair) = args.next().and_then(|next| override_of(next)) {
                    out.push(pair);
                }
            } else if let Some(attached) = arg.strip_prefix("-o") {
                if let Some(pair) = override_of(attached) {
                    out.push(pair);
                }
            }
        }
        out
    }

    /// The arguments that are not `-o` overrides (e.g. pipe's `flags=... argv=...`).
    pub fn plain_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            if arg == "-o" {
                args.next();
            } else if !arg.starts_with("-o") {
                out.push(arg.clone());
            }
        }
        out
    }
}

/// A master.cf entry's words as written, before defaults are applied (postconf -M
/// prints these, keeping `-` where the file has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawServiceEntry {
    /// service, type, private, unpriv, chroot, wakeup, maxproc, command, args...
    pub words: Vec<String>,
    /// First physical line of the entry.
    pub line: usize,
    /// Last physical line (continuations included).
    pub last_line: usize,
}

impl RawServiceEntry {
    /// The service column.
    pub fn name(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }

    /// The type column.
    pub fn service_type(&self) -> &str {
        self.words.get(1).map(String::as_str).unwrap_or("")
    }

    /// The entry on one line in postconf -M's column layout.
    pub fn normalized(&self) -> String {
        let word = |index: usize| self.words.get(index).map(String::as_str).unwrap_or("-");
        let mut line = format!(
            "{:<10} {:<5} {:<7} {:<7} {:<7} {:<7} {:<7} {}",
            word(0),
            word(1),
            word(2),
            word(3),
            word(4),
            word(5),
            word(6),
            word(7)
        );
        for arg in self.words.iter().skip(8) {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// Splits an entry into words; a word starting with `{` runs to its matching `}`.
pub(crate) fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('{') {
            let mut depth = 0usize;
            let mut close = None;
            for (index, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(index + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            close.ok_or_else(|| format!("missing '}}' in \"{rest}\""))?
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        words.push(normalize_braced(&rest[..end]));
        rest = rest[end..].trim_start();
    }
    Ok(words)
}

/// `{  name=value }` -> `{ name=value }`: braces with one space inside, text trimmed.
fn normalize_braced(word: &str) -> String {
    match word
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
    {
        Some(inner) => format!("{{ {} }}", inner.trim()),
        None => word.to_string(),
    }
}

/// Postfix helper services whose work Rostfix's postscreen does itself (`dnsblog`,
/// `tlsproxy`): the reason, shared by master (which skips them), `rostfix check` and
/// `rostconf import`, so all three say the same thing.
pub fn folded_into_postscreen(command: &str) -> Option<&'static str> {
    match command {
        "dnsblog" => Some("postscreen does its DNSBL lookups itself"),
        "tlsproxy" => {
            Some("postscreen hands clients to smtpd before any STARTTLS, and smtpd does TLS")
        }
        _ => None,
    }
}

/// Reads master.cf into its entries as written; only the word count and braces are
/// checked here.
pub fn parse_master_cf_raw(text: &str, file: &Path) -> Result<Vec<RawServiceEntry>, ConfigError> {
    let mut entries = Vec::new();
    for logical in logical_lines(text, file)? {
        let syntax = |message: String| ConfigError::Syntax {
            file: file.to_path_buf(),
            line: logical.first,
            message,
        };
        let words = split_words(&logical.text).map_err(syntax)?;
        if words.len() < 8 {
            return Err(syntax(format!(
                "expected 8 or more columns (service type private unpriv chroot wakeup maxproc command), found {}: \"{}\"",
                words.len(),
                logical.text
            )));
        }
        entries.push(RawServiceEntry {
            words,
            line: logical.first,
            last_line: logical.last,
        });
    }
    Ok(entries)
}

/// A y/n column; `-` is `default`.
fn yes_no(word: &str, default: bool, column: &str) -> Result<bool, String> {
    match word {
        "-" => Ok(default),
        "y" => Ok(true),
        "n" => Ok(false),
        _ => Err(format!(
            "bad {column} field: \"{word}\" (expected y, n or -)"
        )),
    }
}

fn wakeup(word: &str) -> Result<Option<Wakeup>, String> {
    if word == "-" {
        return Ok(None);
    }
    let (digits, after_first_use) = match word.strip_suffix('?') {
        Some(digits) => (digits, true),
        None => (word, false),
    };
    let bad = || format!("bad wakeup field: \"{word}\" (expected N, N? or -)");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds: u32 = digits.parse().map_err(|_| bad())?;
    Ok((seconds > 0).then_some(Wakeup {
        seconds,
        after_first_use,
    }))
}

fn maxproc(word: &str, default: u32) -> Result<u32, String> {
    if word == "-" {
        return Ok(default);
    }
    let bad = || format!("bad maxproc field: \"{word}\" (expected a number or -)");
    if !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    word.parse().map_err(|_| bad())
}

impl RawServiceEntry {
    /// Applies the column defaults and checks each column.
    pub fn resolve(
        &self,
        file: &Path,
        default_process_limit: u32,
    ) -> Result<ServiceEntry, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            file: file.to_path_buf(),
            line: self.line,
            message,
        };
        let words = &self.words;
        if words.len() < 8 {
            return Err(syntax(format!(
                "expected 8 or more columns, found {}",
                words.len()
            )));
        }
        let service_type = ServiceType::parse(&words[1]).ok_or_else(|| {
            syntax(format!(
                "bad transport type: \"{}\" (expected inet, unix, unix-dgram, fifo or pass)",
                words[1]
            ))
        })?;
        Ok(ServiceEntry {
            name: words[0].clone(),
            service_type,
            private: yes_no(&words[2], true, "private").map_err(syntax)?,
            unpriv: yes_no(&words[3], true, "unprivileged").map_err(syntax)?,
            chroot: yes_no(&words[4], false, "chroot").map_err(syntax)?,
            wakeup: wakeup(&words[5]).map_err(syntax)?,
            maxproc: maxproc(&words[6], default_process_limit).map_err(syntax)?,
            command: words[7].clone(),
            args: words[8..].to_vec(),
            file: file.to_path_buf(),
            line: self.line,
        })
    }
}

/// master.cf as loaded.
#[derive(Debug, Clone, Default)]
pub struct MasterCf {
    pub services: Vec<ServiceEntry>,
}

impl MasterCf {
    /// Loads `dir/master.cf`; `default_process_limit` fills `-` in the maxproc column.
    pub fn load(dir: &Path, default_process_limit: u32) -> Result<MasterCf, ConfigError> {
        let path = dir.join("master.cf");
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        MasterCf::parse(&text, &path, default_process_limit)
    }

    /// Parses master.cf text; `file` is used in errors only. Two entries with the same
    /// service name and type are an error (the second could never be started).
    pub fn parse(
        text: &str,
        file: &Path,
        default_process_limit: u32,
    ) -> Result<MasterCf, ConfigError> {
        let mut services = Vec::new();
        let mut seen = HashSet::new();
        for raw in parse_master_cf_raw(text, file)? {
            let entry = raw.resolve(file, default_process_limit)?;
            if !seen.insert((entry.name.clone(), entry.service_type)) {
                return Err(ConfigError::Syntax {
                    file: file.to_path_buf(),
                    line: entry.line,
                    message: format!("duplicate service: {}/{}", entry.name, entry.service_type),
                });
            }
            services.push(entry);
        }
        Ok(MasterCf { services })
    }

    /// The entry for `name`/`service_type`, if any.
    pub fn find(&self, name: &str, service_type: ServiceType) -> Option<&ServiceEntry> {
        self.services
            .iter()
            .find(|entry| entry.name == name && entry.service_type == service_type)
    }
}
