//! postconf's "unused parameter" warnings across main.cf and master.cf: a main.cf name
//! that no code knows is still in use when a master.cf `-o` value or another setting
//! refers to it (`$name`), or when smtpd_restriction_classes lists it; a master.cf
//! `-o name=value` with an unknown, unreferenced name is reported against master.cf.
//! The text is postconf's: `FILE: unused parameter: NAME=VALUE`.

use rostfix_config::{lookup_param, parse_master_cf_raw, MainCf};
use std::collections::HashSet;
use std::path::Path;

/// Names referred to as `$name`, `${name...}` or `$(name...)` in `text`.
pub fn referenced(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        i += 1;
        let start = if i < b.len() && (b[i] == b'{' || b[i] == b'(') {
            i + 1
        } else {
            i
        };
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if end > start {
            out.push(text[start..end].to_string());
        }
        i = end.max(i);
    }
    out
}

/// Every warning, main.cf's then master.cf's.
pub fn warnings(config: &MainCf, dir: &Path) -> Vec<String> {
    let master_path = dir.join("master.cf");
    let params: Vec<(String, String)> = std::fs::read_to_string(&master_path)
        .ok()
        .and_then(|t| parse_master_cf_raw(&t, &master_path).ok())
        .map(|entries| {
            entries
                .iter()
                .flat_map(crate::fields::entry_params)
                .collect()
        })
        .unwrap_or_default();
    let mut used: HashSet<String> = params.iter().flat_map(|(_, v)| referenced(v)).collect();
    for s in config.explicit() {
        used.extend(referenced(&s.raw));
    }
    used.extend(config.get_list("smtpd_restriction_classes"));
    let mut out: Vec<String> = config
        .warnings()
        .iter()
        .filter(|w| {
            let name = w
                .split_once("unused parameter: ")
                .and_then(|(_, rest)| rest.split_once('='))
                .map(|(n, _)| n);
            name.is_none_or(|n| !used.contains(n))
        })
        .cloned()
        .collect();
    let main_names: HashSet<String> = config.explicit().into_iter().map(|s| s.name).collect();
    for (name, value) in &params {
        if lookup_param(name).is_none() && !used.contains(name) && !main_names.contains(name) {
            out.push(format!(
                "{}: unused parameter: {name}={value}",
                master_path.display()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            referenced("a $x, ${y?z} $(w:v) $$ $"),
            vec!["x".to_string(), "y".into(), "w".into()]
        );
        assert!(referenced("none").is_empty());
    }
}
