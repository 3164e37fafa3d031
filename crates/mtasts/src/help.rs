//! The manual page printed by `mtasts --help`.

use rostfix_service::manual::Manual;

/// The text of `mtasts --help`.
pub const HELP: Manual = Manual {
    name: "mtasts - the Rostfix MTA-STS policy service",
    synopsis: "mtasts -n mtasts -t unix [-u] [-o name=value]...",
    description: "\
Started by master(8) (`mtasts unix - - n - 1 mtasts`, one process), listening
on private/mtasts. With rostfix_mta_sts_enable = yes the smtp(8) client asks
it for the MTA-STS policy (RFC 8461) of a next-hop domain before it connects.
mtasts looks up the _mta-sts.DOMAIN TXT record, and when its id differs from
the cached policy's, or no fresh policy is cached, fetches
https://mta-sts.DOMAIN/.well-known/mta-sts.txt (port
rostfix_mta_sts_https_port, certificate checked against rostfix_mta_sts_CAfile
or the system CA store, at most 64 KiB, within rostfix_mta_sts_fetch_timeout,
no redirects). Policies are kept in rostfix_mta_sts_cache for their max_age,
across restarts; a failed fetch leaves the cached policy in force.",
    more_options: "",
    exit_status: "0 when master goes away, 1 on a fatal startup error.",
    see_also: "smtp(8), master(8), docs/mta-sts.md",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
