//! main.cf and master.cf in Postfix syntax, with a typed default for every parameter.
//!
//! `MainCf` holds the explicit settings of main.cf (with file and line for each) plus
//! `-o` overrides, and expands `$name` / `${name}` against them and the defaults.
//! `MasterCf` holds the service entries of master.cf. Errors name file, line and
//! parameter. Unknown parameters are warnings, never errors; so are known parameters
//! Rostfix accepts without implementing them (`UNIMPLEMENTED`, reported by
//! `ineffective` when a setting asks for what they would do).

#![forbid(unsafe_code)]

mod edit;
mod error;
mod expand;
pub mod getopt;
pub mod ineffective;
mod lines;
mod list;
mod main_cf;
mod master_cf;
mod params;
pub mod per_transport;
pub mod table_types;
mod tls_protocols;
mod unimplemented;
pub mod unused;

#[cfg(test)]
mod tests;

pub use edit::{
    comment_out_main_cf, edit_main_cf, edit_main_cf_text, edit_main_cf_with, edit_master_cf_entry,
    MainCfEdit,
};
pub use error::ConfigError;
pub use expand::expand_template;
pub use list::split_list;
pub use main_cf::{config_dir, MainCf, Setting, DEFAULT_CONFIG_DIR};
pub use master_cf::{
    folded_into_postscreen, parse_master_cf_raw, MasterCf, RawServiceEntry, ServiceEntry,
    ServiceType, Wakeup,
};
pub use params::{
    check_value, lookup_param, parse_bool, parse_duration, parse_int, parse_time, ParamDef,
    ParamKind, PARAMS,
};
pub use tls_protocols::{parse_tls_protocols, ProtocolListError, TlsVersions};
pub use unimplemented::{
    lookup_unimplemented, trailing_comment, Stops, Unimplemented, UNIMPLEMENTED,
};
