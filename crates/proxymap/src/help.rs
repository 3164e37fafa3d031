//! The manual page printed by `proxymap --help`.

use rostfix_service::manual::Manual;

/// The text of `proxymap --help`.
pub const HELP: Manual = Manual {
    name: "proxymap - the Rostfix lookup table proxy",
    synopsis: "proxymap -n proxymap -t unix [-c] [-u] [-o name=value]...",
    description: "\
Started by master(8) (`proxymap unix - - n - - proxymap`). Daemons open a table
written as proxy:type:name through private/proxymap: proxymap opens type:name
itself and answers their lookups, so a chrooted smtpd needs neither the table's
files nor the network. Each table is a pool of at most rostfix_proxymap_pool_size
open instances (each with one database connection) shared by all clients: a
database sees that many connections per table from each proxymap process, not one
per daemon. A table that cannot be reached is a temporary error for the client,
never \"not found\". Only tables listed as proxy:type:name in proxy_read_maps are
opened; a request for another is refused (\"proxymap service is not configured for
table\") and logged. The protocol is in docs/ipc.md.",
    more_options: "",
    exit_status: "0 when master goes away, 1 on a fatal startup error.",
    see_also: "master(8), ldap_table(5), pgsql_table(5), memcache_table(5)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
