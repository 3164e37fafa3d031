//! -l, -m, -a, -A: what this build supports, one name per line, as postconf lists
//! them: mailbox lock methods (those local's mailbox_delivery_lock accepts), lookup
//! table types (those crates/maps opens), and SASL server and client types.

/// mailbox_delivery_lock methods local implements (fcntl locks are OFD locks).
pub const LOCK_TYPES: &[&str] = &["fcntl", "dotlock"];

/// smtpd_sasl_type values smtpd accepts: Dovecot's auth protocol, and the built-in
/// password-file type.
pub const SASL_SERVER_TYPES: &[&str] = &["dovecot", "rostfix"];

/// smtp_sasl_type values: the smtp client's SASL is built in (PLAIN and LOGIN with
/// smtp_sasl_password_maps), named like the server's built-in type.
pub const SASL_CLIENT_TYPES: &[&str] = &["rostfix"];

/// Lookup table types, sorted as postconf -m prints them.
pub fn map_types() -> Vec<&'static str> {
    let mut types = rostfix_maps::MAP_TYPES.to_vec();
    types.sort_unstable();
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_types_are_the_maps_crate_types() {
        let t = map_types();
        for expected in [
            "hash", "btree", "regexp", "pcre", "cidr", "texthash", "inline", "static", "unix",
        ] {
            assert!(t.contains(&expected), "{expected}");
        }
        assert!(t.windows(2).all(|w| w[0] < w[1]));
    }
}
