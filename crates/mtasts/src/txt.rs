//! The `_mta-sts.DOMAIN` TXT record (RFC 8461 section 3.1): `v=STSv1; id=...`.
//! Records not starting with `v=STSv1` are discarded; not exactly one left, or one
//! that is malformed, means the domain has no available policy.

/// The policy id of the one valid STSv1 record among `records` (each record's strings
/// already joined), or `None`.
pub fn policy_id(records: &[String]) -> Option<String> {
    let mut sts = records.iter().filter(|r| {
        r.strip_prefix("v=STSv1")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
    });
    let record = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    let mut id = None;
    for (n, field) in record.split(';').enumerate() {
        let field = field.trim_matches(|c| c == ' ' || c == '\t');
        if field.is_empty() {
            continue;
        }
        let (key, value) = field.split_once('=')?;
        match (n, key) {
            (0, "v") => {}
            (_, "id") if id.is_none() => {
                if value.is_empty()
                    || value.len() > 32
                    || !value.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return None;
                }
                id = Some(value.to_string());
            }
            // Extension fields are allowed: key and value are visible characters.
            _ => {}
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(records: &[&str]) -> Option<String> {
        policy_id(&records.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_rfc_example_and_variants() {
        assert_eq!(
            ids(&["v=STSv1; id=20160831085700Z;"]).as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(ids(&["v=STSv1;id=abc"]).as_deref(), Some("abc"));
        assert_eq!(
            ids(&["v=spf1 -all", "v=STSv1; id=1; ext=x"]).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn none_two_or_malformed_records_mean_no_policy() {
        assert_eq!(ids(&[]), None);
        assert_eq!(ids(&["v=STSv1; id=1", "v=STSv1; id=2"]), None);
        assert_eq!(ids(&["v=STSv1;"]), None);
        assert_eq!(ids(&["v=STSv1; id=has-dash"]), None);
        assert_eq!(
            ids(&["v=STSv1; id=123456789012345678901234567890123"]),
            None
        );
        assert_eq!(ids(&["v=STSv10; id=1"]), None);
        assert_eq!(ids(&["v=STSv1; junk"]), None);
    }
}
