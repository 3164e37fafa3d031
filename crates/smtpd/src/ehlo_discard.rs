//! The EHLO keywords hidden from a client (to work around a broken one), as
//! smtpd_discard_ehlo_keywords / smtpd_discard_ehlo_keyword_address_maps and
//! postscreen's namesakes configure them; logged as Postfix does unless the list
//! holds `silent-discard`. One type for both daemons, so a client sees the same EHLO
//! on either side of postscreen's hand-off.

use rostfix_config::MainCf;
use rostfix_maps::{open_map, Map, MapError};
use std::net::IpAddr;

/// A table that cannot be opened, with the parameter naming it.
#[derive(Debug, thiserror::Error)]
#[error("{param}: {source}")]
pub struct EhloDiscardError {
    pub param: &'static str,
    #[source]
    pub source: MapError,
}

/// The configured keywords and the per-client tables.
pub struct EhloDiscard {
    /// Lower case; may hold `silent-discard`.
    keywords: Vec<String>,
    /// Client address -> keywords to discard for that client.
    maps: Vec<Box<dyn Map>>,
}

impl std::fmt::Debug for EhloDiscard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let specs: Vec<&str> = self.maps.iter().map(|m| m.spec()).collect();
        f.debug_struct("EhloDiscard")
            .field("keywords", &self.keywords)
            .field("maps", &specs)
            .finish()
    }
}

impl EhloDiscard {
    /// Reads `keywords_param` (a list) and `maps_param` (tables, `{...}` groups kept).
    pub fn from_config(
        cf: &MainCf,
        keywords_param: &'static str,
        maps_param: &'static str,
    ) -> Result<EhloDiscard, EhloDiscardError> {
        let mut maps = Vec::new();
        for item in crate::session_options::list_with_braces(&cf.get(maps_param)) {
            maps.push(open_map(&item).map_err(|source| EhloDiscardError {
                param: maps_param,
                source,
            })?);
        }
        Ok(EhloDiscard {
            keywords: keywords(&cf.get(keywords_param)),
            maps,
        })
    }

    /// The keywords to hide from the client at `ip`: the address table's value when
    /// it has one (lookup errors fall back to the global list), else the list.
    pub fn for_client(&self, ip: Option<IpAddr>) -> Vec<String> {
        if let Some(ip) = ip {
            let key = ip.to_string();
            for map in &self.maps {
                if let Ok(Some(value)) = map.lookup(&key) {
                    return keywords(&value);
                }
            }
        }
        self.keywords.clone()
    }

    /// Removes the client's discarded keywords from an EHLO reply's lines
    /// (`lines[0]` is our name) and logs what went, as Postfix does.
    pub fn apply(&self, ip: Option<IpAddr>, lines: &mut Vec<String>) {
        let discard = self.for_client(ip);
        if discard.is_empty() || lines.is_empty() {
            return;
        }
        let mut dropped = Vec::new();
        let mut kept = vec![lines[0].clone()];
        for line in lines.drain(..).skip(1) {
            let keyword = line
                .split([' ', '='])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if discard.contains(&keyword) {
                dropped.push(keyword);
            } else {
                kept.push(line);
            }
        }
        *lines = kept;
        if !dropped.is_empty() && !discard.iter().any(|k| k == "silent-discard") {
            log::info!(
                "discarding EHLO keywords: {}",
                dropped.join(" ").to_uppercase()
            );
        }
    }
}

fn keywords(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn keywords_go_and_the_name_stays() {
        let cf = MainCf::parse(
            "postscreen_discard_ehlo_keywords = pipelining, STARTTLS\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        let d = EhloDiscard::from_config(
            &cf,
            "postscreen_discard_ehlo_keywords",
            "postscreen_discard_ehlo_keyword_address_maps",
        )
        .unwrap();
        let mut lines: Vec<String> = ["mx.example", "SIZE 10", "STARTTLS", "ETRN"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        d.apply(None, &mut lines);
        assert_eq!(lines, ["mx.example", "SIZE 10", "ETRN"]);
    }
}
