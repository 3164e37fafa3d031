//! main.cf and master.cf in Postfix syntax, with a typed default for every parameter.
//!
//! `MainCf` holds the explicit settings of main.cf (with file and line for each) plus
//! `-o` overrides, and expands `$name` / `${name}` against them and the defaults.
//! `MasterCf` holds the service entries of master.cf. Errors name file, line and
//! parameter. Unknown parameters are warnings, never errors.

mod error;
mod main_cf;
mod master_cf;
mod params;
mod edit;

pub use error::ConfigError;
pub use main_cf::{config_dir, MainCf, Setting, DEFAULT_CONFIG_DIR};
pub use master_cf::{MasterCf, ServiceEntry, ServiceType, Wakeup};
pub use params::{lookup_param, ParamDef, ParamKind, PARAMS};
pub use edit::{edit_main_cf, edit_master_cf_entry};
