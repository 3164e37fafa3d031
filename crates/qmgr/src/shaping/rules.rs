//! The shaping rules file (`rostfix_shaping_rules`, docs/bulk-sending.md "Traffic
//! shaping per provider"): one `[name]` section per bucket, then `key = value` lines;
//! `#` starts a comment line. Every error names its line, so an operator's typo is
//! found at once, and the caller keeps the rules it had.
//!
//! ```text
//! [google]
//! mx = *.google.com, *.googlemail.com
//! domains = gmail.com          # optional: matched before any MX lookup
//! concurrency = 10             # connections at once over all the bucket's domains
//! messages_per_connection = 100
//! rate = 3600                  # messages per hour (0 = no rate limit)
//! burst = 20                   # messages that may go at once after a quiet spell
//! backoff_factor = 0.5         # on a throttle reply: rate and concurrency times this
//! rate_floor = 60              # never below this many per hour
//! concurrency_floor = 1
//! cooloff = 5m                 # no throttle reply for this long: start recovering
//! recover_interval = 1m        # then one step every interval
//! recover_step = 25            # percent of the configured rate per step (concurrency +1)
//! ```

use super::pattern::HostPattern;
use rostfix_config::parse_time;
use std::time::Duration;

/// Most rules (buckets) in one file, and longest file read: bounds on operator input
/// that qmgr keeps in memory.
const MAX_RULES: usize = 1000;
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// One bucket's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub mx: Vec<HostPattern>,
    pub domains: Vec<HostPattern>,
    /// 0 = no limit of its own (the transport's limits still apply).
    pub concurrency: usize,
    /// 0 = the smtp client's smtp_connection_reuse_count_limit.
    pub messages_per_connection: u32,
    /// Messages per hour; 0 = no rate limit.
    pub rate: u32,
    pub burst: u32,
    pub backoff_factor: f64,
    pub rate_floor: u32,
    pub concurrency_floor: usize,
    pub cooloff: Duration,
    pub recover_interval: Duration,
    /// Percent of `rate` added per recovery step.
    pub recover_step: u32,
}

impl Rule {
    fn new(name: String) -> Rule {
        Rule {
            name,
            mx: Vec::new(),
            domains: Vec::new(),
            concurrency: 0,
            messages_per_connection: 0,
            rate: 0,
            burst: 1,
            backoff_factor: 0.5,
            rate_floor: 60,
            concurrency_floor: 1,
            cooloff: Duration::from_secs(300),
            recover_interval: Duration::from_secs(60),
            recover_step: 25,
        }
    }
}

/// The whole file, rules in file order (the first match wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// What is wrong with a rules file, with the 1-based line number.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RulesError {
    #[error("line {0}: setting outside a [bucket] section")]
    NoSection(usize),
    #[error("line {0}: bad section header (want [name] with letters, digits, - _ .)")]
    BadSection(usize),
    #[error("line {0}: duplicate bucket [{1}]")]
    Duplicate(usize, String),
    #[error("line {0}: expected key = value")]
    Syntax(usize),
    #[error("line {0}: unknown key {1:?}")]
    UnknownKey(usize, String),
    #[error("line {0}: bad value for {1}: {2:?}")]
    BadValue(usize, String, String),
    #[error("line {0}: bucket [{1}] has neither mx nor domains")]
    NoMatch(usize, String),
    #[error("more than {MAX_RULES} buckets")]
    TooMany,
}

fn number<T: std::str::FromStr>(line: usize, key: &str, v: &str) -> Result<T, RulesError> {
    v.parse()
        .map_err(|_| RulesError::BadValue(line, key.into(), v.into()))
}

fn patterns(line: usize, key: &str, v: &str) -> Result<Vec<HostPattern>, RulesError> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            HostPattern::parse(p).ok_or_else(|| RulesError::BadValue(line, key.into(), p.into()))
        })
        .collect()
}

fn duration(line: usize, key: &str, v: &str) -> Result<Duration, RulesError> {
    parse_time(v, 's')
        .map(Duration::from_secs)
        .ok_or_else(|| RulesError::BadValue(line, key.into(), v.into()))
}

fn set(rule: &mut Rule, line: usize, key: &str, v: &str) -> Result<(), RulesError> {
    let bad = || RulesError::BadValue(line, key.into(), v.into());
    match key {
        "mx" => rule.mx = patterns(line, key, v)?,
        "domains" => rule.domains = patterns(line, key, v)?,
        "concurrency" => rule.concurrency = number(line, key, v)?,
        "messages_per_connection" => rule.messages_per_connection = number(line, key, v)?,
        "rate" => rule.rate = number(line, key, v.trim_end_matches("/h"))?,
        "burst" => rule.burst = number::<u32>(line, key, v)?.max(1),
        "backoff_factor" => {
            rule.backoff_factor = number(line, key, v)?;
            if !(rule.backoff_factor > 0.0 && rule.backoff_factor < 1.0) {
                return Err(bad());
            }
        }
        "rate_floor" => rule.rate_floor = number(line, key, v.trim_end_matches("/h"))?,
        "concurrency_floor" => rule.concurrency_floor = number::<usize>(line, key, v)?.max(1),
        "cooloff" => rule.cooloff = duration(line, key, v)?,
        "recover_interval" => rule.recover_interval = duration(line, key, v)?,
        "recover_step" => {
            rule.recover_step = number(line, key, v.trim_end_matches('%'))?;
            if !(1..=100).contains(&rule.recover_step) {
                return Err(bad());
            }
        }
        _ => return Err(RulesError::UnknownKey(line, key.into())),
    }
    Ok(())
}

/// Parses a whole rules file.
pub fn parse(text: &str) -> Result<Rules, RulesError> {
    let mut rules: Vec<(usize, Rule)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        // A `#` after white space starts a comment too: values hold no `#`.
        let line = raw.split(" #").next().unwrap_or(raw).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[') {
            let name = head
                .strip_suffix(']')
                .ok_or(RulesError::BadSection(n))?
                .trim();
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(RulesError::BadSection(n));
            }
            if rules.iter().any(|(_, r)| r.name == name) {
                return Err(RulesError::Duplicate(n, name.into()));
            }
            if rules.len() >= MAX_RULES {
                return Err(RulesError::TooMany);
            }
            rules.push((n, Rule::new(name.into())));
            continue;
        }
        let (key, value) = line.split_once('=').ok_or(RulesError::Syntax(n))?;
        let (_, rule) = rules.last_mut().ok_or(RulesError::NoSection(n))?;
        set(rule, n, key.trim(), value.trim())?;
    }
    for (n, r) in &rules {
        if r.mx.is_empty() && r.domains.is_empty() {
            return Err(RulesError::NoMatch(*n, r.name.clone()));
        }
    }
    Ok(Rules {
        rules: rules.into_iter().map(|(_, r)| r).collect(),
    })
}

impl Rules {
    /// The first rule whose `domains` match `domain`.
    pub fn by_domain(&self, domain: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.domains.iter().any(|p| p.matches(domain)))
    }

    /// The first rule (in file order) with an `mx` pattern matching one of `hosts`.
    pub fn by_mx(&self, hosts: &[String]) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.mx.iter().any(|p| hosts.iter().any(|h| p.matches(h))))
    }

    /// Whether any rule needs the MX hosts of a domain.
    pub fn wants_mx(&self) -> bool {
        self.rules.iter().any(|r| !r.mx.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# providers
[google]
mx = *.google.com, *.googlemail.com
domains = gmail.com
concurrency = 10
messages_per_connection = 100
rate = 3600/h   # an hour's worth
burst = 5
backoff_factor = 0.5
rate_floor = 120
cooloff = 5m
recover_interval = 30s
recover_step = 50%

[outlook]
mx = *.outlook.com
";

    #[test]
    fn a_good_file_parses_with_defaults_for_the_rest() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.rules.len(), 2);
        let g = &r.rules[0];
        assert_eq!(g.name, "google");
        assert_eq!(g.mx.len(), 2);
        assert_eq!((g.concurrency, g.messages_per_connection), (10, 100));
        assert_eq!((g.rate, g.burst, g.rate_floor), (3600, 5, 120));
        assert_eq!(g.cooloff, Duration::from_secs(300));
        assert_eq!(g.recover_interval, Duration::from_secs(30));
        assert_eq!(g.recover_step, 50);
        let o = &r.rules[1];
        assert_eq!((o.rate, o.concurrency, o.backoff_factor), (0, 0, 0.5));
        assert_eq!(
            r.by_domain("gmail.com").map(|r| r.name.as_str()),
            Some("google")
        );
        let hosts = vec!["x.mail.protection.outlook.com".to_string()];
        assert_eq!(r.by_mx(&hosts).map(|r| r.name.as_str()), Some("outlook"));
        assert!(r.by_mx(&["mx.example.org".to_string()]).is_none());
        assert_eq!(parse("").unwrap(), Rules::default());
    }

    #[test]
    fn errors_name_their_line() {
        let cases: &[(&str, RulesError)] = &[
            ("rate = 1\n", RulesError::NoSection(1)),
            ("[a]\nmx = *.a.test\n[a b]\n", RulesError::BadSection(3)),
            (
                "[a]\nmx=*.a.test\n\n[a]\n",
                RulesError::Duplicate(4, "a".into()),
            ),
            ("[a]\nmx = *.a.test\nrate 5\n", RulesError::Syntax(3)),
            (
                "[a]\nmx = *.a.test\nspeed = 5\n",
                RulesError::UnknownKey(3, "speed".into()),
            ),
            (
                "[a]\nmx = *.a.test\n# c\nrate = fast\n",
                RulesError::BadValue(4, "rate".into(), "fast".into()),
            ),
            (
                "[a]\nmx = a.*.test\n",
                RulesError::BadValue(2, "mx".into(), "a.*.test".into()),
            ),
            (
                "[a]\nmx = *.a.test\nbackoff_factor = 1.5\n",
                RulesError::BadValue(3, "backoff_factor".into(), "1.5".into()),
            ),
            ("\n[a]\nrate = 5\n", RulesError::NoMatch(2, "a".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Err(want), "{text:?}");
        }
        assert!(RulesError::Syntax(7).to_string().starts_with("line 7:"));
    }
}
