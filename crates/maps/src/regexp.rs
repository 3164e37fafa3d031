//! `regexp:` and `pcre:` tables in Postfix's regexp_table(5) / pcre_table(5) syntax:
//! `/pattern/flags result`, `!/pattern/ result`, `if /pattern/` ... `endif`, and
//! `$1` / `${1}` / `$(1)` substitution of captured groups (`$$` is a literal `$`).
//! Both types use the Rust `regex` crate (no backreferences or look-around, linear-time
//! matching); `pcre:` is a second name for the same engine with PCRE's flag letters.
//! The first matching rule wins; the whole key is matched, not case-folded.
//! Opened with [`OpenFlags::no_regsub`], a matching rule that substitutes a group is
//! a lookup error (see the crate's "Paranoid tables").

use crate::error::MapError;
use crate::reload::Watched;
use crate::source::logical_lines;
use crate::{Map, OpenFlags};
use regex::{Regex, RegexBuilder};
use std::path::{Path, PathBuf};

/// Which flag alphabet a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// regexp_table(5): i (default on), m, x (default on; always on here).
    Regexp,
    /// pcre_table(5): i (default on), m, s, x, A, U; E and X accepted as no-ops.
    Pcre,
}

#[derive(Debug)]
struct Pattern {
    re: Regex,
    negate: bool,
}

impl Pattern {
    fn matches(&self, key: &str) -> bool {
        self.re.is_match(key) != self.negate
    }
}

/// A piece of a result template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

#[derive(Debug)]
enum Node {
    Rule {
        pat: Pattern,
        result: Vec<Piece>,
        line: usize,
    },
    If {
        pat: Pattern,
        body: Vec<Node>,
    },
}

/// An open `if` block while parsing: its condition and line (None at top level) and
/// the rules collected so far.
type Block = (Option<(Pattern, usize)>, Vec<Node>);

/// A parsed regexp table.
#[derive(Debug)]
pub struct RegexpTable {
    nodes: Vec<Node>,
}

fn syntax(path: &Path, line: usize, reason: impl Into<String>) -> MapError {
    MapError::Syntax {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// Split `!/pat/flags rest` into (negate, pattern, flags, rest).
fn split_pattern(text: &str) -> Result<(bool, String, String, &str), String> {
    let (negate, text) = match text.strip_prefix('!') {
        Some(t) => (true, t.trim_start()),
        None => (false, text),
    };
    let mut chars = text.char_indices();
    let delim = match chars.next() {
        Some((_, c)) if !c.is_whitespace() && !c.is_alphanumeric() && c != '\\' => c,
        _ => return Err("pattern must start with a delimiter such as /".into()),
    };
    let mut pat = String::new();
    let mut end = None;
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            if c != delim {
                pat.push('\\');
            }
            pat.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            end = Some(i + c.len_utf8());
            break;
        } else {
            pat.push(c);
        }
    }
    let end = end.ok_or_else(|| format!("missing closing delimiter {delim}"))?;
    let rest = &text[end..];
    let flags_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Ok((
        negate,
        pat,
        rest[..flags_end].to_string(),
        rest[flags_end..].trim(),
    ))
}

fn compile(pat: &str, flags: &str, dialect: Dialect) -> Result<Regex, String> {
    let mut icase = true;
    let (mut multi, mut dotall, mut xmode, mut ungreedy, mut anchored) =
        (false, false, false, false, false);
    for f in flags.chars() {
        match (f, dialect) {
            ('i', _) => icase = !icase,
            ('m', _) => multi = !multi,
            // regexp's x toggles POSIX extended syntax, which this engine always has.
            ('x', Dialect::Regexp) => {}
            ('x', Dialect::Pcre) => xmode = !xmode,
            ('s', Dialect::Pcre) => dotall = !dotall,
            ('U', Dialect::Pcre) => ungreedy = !ungreedy,
            ('A', Dialect::Pcre) => anchored = !anchored,
            ('E' | 'X', Dialect::Pcre) => {}
            _ => return Err(format!("unknown regexp option \"{f}\"")),
        }
    }
    if dialect == Dialect::Regexp {
        // POSIX regcomp without REG_NEWLINE (the `m` flag): `.` and `[^...]` match a
        // newline too, which header_checks relies on for folded headers.
        dotall = !multi;
    }
    let source = if anchored {
        format!(r"\A(?:{pat})")
    } else {
        pat.to_string()
    };
    RegexBuilder::new(&source)
        .case_insensitive(icase)
        .multi_line(multi)
        .dot_matches_new_line(dotall)
        .ignore_whitespace(xmode)
        .swap_greed(ungreedy)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| format!("bad regular expression: {e}"))
}

/// Parse a result template's `$n`, `${n}`, `$(n)` and `$$`.
fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            lit.push(c);
            continue;
        }
        let name: String = match chars.peek() {
            Some('$') => {
                chars.next();
                lit.push('$');
                continue;
            }
            Some(&open @ ('{' | '(')) => {
                chars.next();
                let close = if open == '{' { '}' } else { ')' };
                let mut n = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c == close => break,
                        Some(c) => n.push(c),
                        None => return Err(format!("missing '{close}' in \"{text}\"")),
                    }
                }
                n
            }
            Some(c) if c.is_ascii_digit() => {
                let mut n = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(d);
                    chars.next();
                }
                n
            }
            _ => return Err(format!("bad $ in result \"{text}\"")),
        };
        let n: usize = name
            .trim()
            .parse()
            .map_err(|_| format!("unknown substitution ${name}: only $number is allowed"))?;
        if !lit.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut lit)));
        }
        out.push(Piece::Group(n));
    }
    if !lit.is_empty() {
        out.push(Piece::Text(lit));
    }
    Ok(out)
}

impl RegexpTable {
    /// Parse table text; `path` only names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path, dialect: Dialect) -> Result<RegexpTable, MapError> {
        // A stack of open `if` blocks; the bottom is the top level.
        let mut stack: Vec<Block> = vec![(None, Vec::new())];
        for l in logical_lines(bytes) {
            let text = l.text.as_str();
            let word_end = text.find(char::is_whitespace).unwrap_or(text.len());
            let word = &text[..word_end];
            if word.eq_ignore_ascii_case("endif") {
                if word_end != text.len() {
                    return Err(syntax(path, l.line, "garbage after endif"));
                }
                if stack.len() == 1 {
                    return Err(syntax(path, l.line, "ignoring ENDIF without matching IF"));
                }
                if let Some((Some((pat, _)), body)) = stack.pop() {
                    if let Some(top) = stack.last_mut() {
                        top.1.push(Node::If { pat, body });
                    }
                }
                continue;
            }
            let is_if = word.eq_ignore_ascii_case("if") && word_end < text.len();
            let rule = if is_if {
                text[word_end..].trim_start()
            } else {
                text
            };
            let (negate, pat, flags, rest) =
                split_pattern(rule).map_err(|r| syntax(path, l.line, r))?;
            let re = compile(&pat, &flags, dialect).map_err(|r| syntax(path, l.line, r))?;
            let pattern = Pattern { re, negate };
            if is_if {
                if !rest.is_empty() {
                    return Err(syntax(path, l.line, "garbage after IF pattern"));
                }
                stack.push((Some((pattern, l.line)), Vec::new()));
                continue;
            }
            // A bad result is skipped with a warning, as Postfix's dict_regexp does
            // (postmap goes on and answers from the other rules).
            let result = match parse_template(rest) {
                Ok(r) => r,
                Err(r) => {
                    log::warn!(
                        "{}, line {}: {r}: skipping this rule",
                        path.display(),
                        l.line
                    );
                    continue;
                }
            };
            let groups = pattern.re.captures_len() - 1;
            let bad = result.iter().find_map(|p| match p {
                Piece::Group(_) if negate => {
                    Some("$number found in negative match replacement text".to_string())
                }
                Piece::Group(0) => Some("bad replacement syntax".to_string()),
                Piece::Group(n) if *n > groups => {
                    Some(format!("out of range replacement index \"{n}\""))
                }
                _ => None,
            });
            if let Some(why) = bad {
                log::warn!(
                    "{}, line {}: {why}: skipping this rule",
                    path.display(),
                    l.line
                );
                continue;
            }
            if let Some(top) = stack.last_mut() {
                top.1.push(Node::Rule {
                    pat: pattern,
                    result,
                    line: l.line,
                });
            }
        }
        if stack.len() > 1 {
            let line = stack.last().and_then(|s| s.0.as_ref()).map_or(0, |p| p.1);
            return Err(syntax(path, line, "IF has no matching ENDIF"));
        }
        let nodes = stack.pop().map(|s| s.1).unwrap_or_default();
        Ok(RegexpTable { nodes })
    }

    /// First matching rule's result with groups substituted.
    pub fn find(&self, key: &str) -> Option<String> {
        self.lookup(key, false).unwrap_or_default()
    }

    /// Like [`RegexpTable::find`]; with `no_regsub`, a first matching rule that
    /// would substitute a group is `Err(SubstitutionRefused)` instead.
    pub fn lookup(
        &self,
        key: &str,
        no_regsub: bool,
    ) -> Result<Option<String>, SubstitutionRefused> {
        find_in(&self.nodes, key, no_regsub).transpose()
    }

    /// The lines of the rules that substitute groups (to warn about at open time).
    pub fn substituting_lines(&self) -> Vec<usize> {
        let mut lines = Vec::new();
        collect_substituting(&self.nodes, &mut lines);
        lines
    }
}

/// A paranoid table's matching rule wanted to copy part of the key into its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubstitutionRefused {
    /// The rule's line in the table file.
    pub line: usize,
}

fn collect_substituting(nodes: &[Node], lines: &mut Vec<usize>) {
    for node in nodes {
        match node {
            Node::If { body, .. } => collect_substituting(body, lines),
            Node::Rule { result, line, .. } => {
                if has_groups(result) {
                    lines.push(*line);
                }
            }
        }
    }
}

fn has_groups(result: &[Piece]) -> bool {
    result.iter().any(|p| matches!(p, Piece::Group(_)))
}

fn find_in(
    nodes: &[Node],
    key: &str,
    no_regsub: bool,
) -> Option<Result<String, SubstitutionRefused>> {
    for node in nodes {
        match node {
            Node::If { pat, body } => {
                if pat.matches(key) {
                    if let Some(found) = find_in(body, key, no_regsub) {
                        return Some(found);
                    }
                }
            }
            Node::Rule { pat, result, line } => {
                if pat.negate {
                    // Negated rules never have groups (refused when parsing).
                    if !pat.re.is_match(key) {
                        return Some(Ok(render(result, None)));
                    }
                } else if let Some(caps) = pat.re.captures(key) {
                    if no_regsub && has_groups(result) {
                        return Some(Err(SubstitutionRefused { line: *line }));
                    }
                    return Some(Ok(render(result, Some(&caps))));
                }
            }
        }
    }
    None
}

fn render(result: &[Piece], caps: Option<&regex::Captures<'_>>) -> String {
    let mut out = String::new();
    for p in result {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(n) => {
                if let Some(m) = caps.and_then(|c| c.get(*n)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out
}

/// `regexp:FILE` / `pcre:FILE`, re-read when FILE changes.
pub struct RegexpMap {
    spec: String,
    table: Watched<RegexpTable>,
    no_regsub: bool,
}

impl RegexpMap {
    /// Read and compile `path` now.
    pub fn open(
        spec: &str,
        path: &Path,
        dialect: Dialect,
        flags: OpenFlags,
    ) -> Result<RegexpMap, MapError> {
        let p: PathBuf = path.to_path_buf();
        let no_regsub = flags.no_regsub;
        let name = spec.to_string();
        let table = Watched::new(
            vec![p.clone()],
            Box::new(move || {
                let bytes = std::fs::read(&p).map_err(|e| MapError::io(&p, e))?;
                let t = RegexpTable::parse(&bytes, &p, dialect)?;
                if no_regsub {
                    for line in t.substituting_lines() {
                        log::warn!(
                            "{name}, line {line}: regular expression substitution is not \
                             allowed in this table: lookups that match this rule will fail"
                        );
                    }
                }
                Ok(t)
            }),
        )?;
        Ok(RegexpMap {
            spec: spec.to_string(),
            table,
            no_regsub,
        })
    }
}

impl Map for RegexpMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        self.table
            .get()?
            .lookup(key, self.no_regsub)
            .map_err(|refused| {
                let reason = format!(
                    "line {}: regular expression substitution is not allowed",
                    refused.line
                );
                log::warn!("{}, {reason}", self.spec);
                MapError::Lookup {
                    table: self.spec.clone(),
                    reason,
                }
            })
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn is_pattern(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(src: &str) -> RegexpTable {
        RegexpTable::parse(src.as_bytes(), Path::new("t"), Dialect::Regexp).unwrap()
    }

    #[test]
    fn posix_dot_matches_newline_unless_m() {
        let re = compile("^Subject: a.b$", "", Dialect::Regexp).unwrap();
        assert!(re.is_match("Subject: a\nb"));
        let re = compile("^b$", "m", Dialect::Regexp).unwrap();
        assert!(re.is_match("a\nb"));
        let re = compile("a.b", "m", Dialect::Regexp).unwrap();
        assert!(!re.is_match("a\nb"));
        // PCRE keeps its own default: no newline without `s`.
        assert!(!compile("a.b", "", Dialect::Pcre).unwrap().is_match("a\nb"));
    }

    #[test]
    fn first_match_and_default_icase() {
        let t = table("/^root@/ admin\n/@EXAMPLE\\.com$/ example\n/./ other\n");
        assert_eq!(t.find("ROOT@x").as_deref(), Some("admin"));
        assert_eq!(t.find("bob@example.COM").as_deref(), Some("example"));
        assert_eq!(t.find("z").as_deref(), Some("other"));
        assert_eq!(t.find(""), None);
    }

    #[test]
    fn i_flag_toggles_to_case_sensitive() {
        let t = table("/^Abc$/i exact\n");
        assert_eq!(t.find("Abc").as_deref(), Some("exact"));
        assert_eq!(t.find("abc"), None);
    }

    #[test]
    fn substitution_forms() {
        let t = table("/^(.*)-(.*)@(.*)$/ $2 ${1}+$(3) $$5\n/^(x)|(y)$/ [$2]\n");
        assert_eq!(t.find("a-b@c").as_deref(), Some("b a+c $5"));
        assert_eq!(t.find("x").as_deref(), Some("[]"));
    }

    #[test]
    fn negation_and_if_endif() {
        let t = table(
            "if /@example\\.com$/\n!/^postmaster@/ REJECT\nendif\n/^postmaster@/ OK\n\
             if !/\\.org$/\n/^a/ not-org\nendif\n",
        );
        assert_eq!(t.find("bob@example.com").as_deref(), Some("REJECT"));
        assert_eq!(t.find("postmaster@example.com").as_deref(), Some("OK"));
        assert_eq!(t.find("al@x.net").as_deref(), Some("not-org"));
        assert_eq!(t.find("al@x.org"), None);
    }

    #[test]
    fn other_delimiter_and_escaped_delimiter() {
        let t = table("#comment\n  \n|^a/b$| slash\n/^c\\/d$/ escaped\n");
        assert_eq!(t.find("a/b").as_deref(), Some("slash"));
        assert_eq!(t.find("c/d").as_deref(), Some("escaped"));
    }

    #[test]
    fn continuation_joins_result() {
        let t = table("/^a$/ one\n two\n");
        assert_eq!(t.find("a").as_deref(), Some("one two"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = |src: &str| {
            RegexpTable::parse(src.as_bytes(), Path::new("/etc/t"), Dialect::Regexp)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad("/ok/ x\n/(unclosed/ y\n").split(':').next(),
            Some("/etc/t, line 2")
        );
        assert!(bad("/a/ x\n/b\n").starts_with("/etc/t, line 2: missing closing"));
        assert!(bad("if /a/\n/b/ c\n").contains("line 1: IF has no matching ENDIF"));
        assert!(bad("endif\n").contains("line 1"));
        assert!(bad("/a/q x\n").contains("unknown regexp option"));
    }

    #[test]
    fn bad_results_skip_the_rule_like_postfix() {
        // dict_regexp warns and skips; the other rules still answer.
        let t = table("/(a)/ $2\n!/(a)/ $1\n/^(b)/ $0\n/(.)/ ok $1\n");
        assert_eq!(t.find("a").as_deref(), Some("ok a"));
        assert_eq!(t.find("b").as_deref(), Some("ok b"));
    }

    #[test]
    fn no_regsub_refuses_only_substituting_rules_that_match() {
        let t = table(
            "/^(.*)-archive$/ |/bin/echo $1\nif /^x/\n/^x(.)$/ $1\nendif\n/^plain$/ fixed $$1\n",
        );
        assert_eq!(
            t.lookup("`id`-archive", true),
            Err(SubstitutionRefused { line: 1 })
        );
        assert_eq!(t.lookup("xy", true), Err(SubstitutionRefused { line: 3 }));
        // `$$` is a literal dollar, not a substitution.
        assert_eq!(t.lookup("plain", true), Ok(Some("fixed $1".into())));
        assert_eq!(t.lookup("other", true), Ok(None));
        assert_eq!(
            t.lookup("a-archive", false),
            Ok(Some("|/bin/echo a".into()))
        );
        assert_eq!(t.substituting_lines(), vec![1, 3]);
    }

    #[test]
    fn paranoid_map_lookup_is_a_table_error() {
        let dir = std::env::temp_dir().join(format!("rostfix-regsub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("aliases.re");
        std::fs::write(&file, "/^(.*)-archive$/ |/bin/echo $1\n/^ok$/ root\n").unwrap();
        let spec = format!("regexp:{}", file.display());
        let paranoid = crate::open_map_with(&spec, OpenFlags::PARANOID).unwrap();
        let err = paranoid.lookup("`id`-archive").unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{spec}: lookup error: line 1: regular expression substitution is not allowed")
        );
        assert_eq!(paranoid.lookup("ok").unwrap().as_deref(), Some("root"));
        let pcre = crate::open_map_with(
            &format!("proxy:pcre:{}", file.display()),
            OpenFlags::PARANOID,
        )
        .unwrap();
        assert!(pcre.lookup("a-archive").is_err());
        let plain = crate::open_map(&spec).unwrap();
        assert_eq!(
            plain.lookup("a-archive").unwrap().as_deref(),
            Some("|/bin/echo a")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pcre_flags() {
        let t = RegexpTable::parse(
            b"/a b/x spaced\n/^X.Y$/is dot\n",
            Path::new("t"),
            Dialect::Pcre,
        )
        .unwrap();
        assert_eq!(t.find("ab").as_deref(), Some("spaced"));
        assert_eq!(t.find("X\nY").as_deref(), Some("dot"));
        assert!(RegexpTable::parse(b"/a/s x\n", Path::new("t"), Dialect::Regexp).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(t) = RegexpTable::parse(&bytes, Path::new("t"), Dialect::Pcre) {
                let _ = t.find("user@example.com");
            }
        }
    }
}
