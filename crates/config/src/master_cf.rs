//! master.cf: the service table.

use crate::ConfigError;
use std::path::{Path, PathBuf};

/// master.cf's type column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceType {
    Inet,
    Unix,
    UnixDgram,
    Fifo,
    Pass,
}

/// master.cf's wakeup column when not `-`/`0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    pub seconds: u32,
    /// `N?`: wake only after the service was used once.
    pub after_first_use: bool,
}

/// One master.cf entry, with `-` columns already replaced by their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service column, e.g. `smtp`, `127.0.0.1:2525`, `[::1]:2525`, `submission`.
    pub name: String,
    pub service_type: ServiceType,
    pub private: bool,
    pub unpriv: bool,
    pub chroot: bool,
    pub wakeup: Option<Wakeup>,
    /// 0 means unlimited; `-` is default_process_limit.
    pub maxproc: u32,
    /// The command (first word of the command column), e.g. `smtpd`.
    pub command: String,
    /// The remaining words, with `-o` overrides kept as written (`-o`, `name=value`).
    pub args: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
}

impl ServiceEntry {
    /// The `-o name=value` overrides among `args`, in order (also `-o { name = value }`).
    pub fn overrides(&self) -> Vec<(String, String)> {
        todo!()
    }
}

/// master.cf as loaded.
#[derive(Debug, Clone, Default)]
pub struct MasterCf {
    pub services: Vec<ServiceEntry>,
}

impl MasterCf {
    /// Loads `dir/master.cf`; `default_process_limit` fills `-` in the maxproc column.
    pub fn load(dir: &Path, default_process_limit: u32) -> Result<MasterCf, ConfigError> {
        let _ = (dir, default_process_limit);
        todo!()
    }

    /// Parses master.cf text; `file` is used in errors only.
    pub fn parse(text: &str, file: &Path, default_process_limit: u32) -> Result<MasterCf, ConfigError> {
        let _ = (text, file, default_process_limit);
        todo!()
    }
}
