//! Helpers shared by the workspace's tests: today, the rule for tests that need root.
//!
//! A root-only test that returns early when it is not root passes without testing
//! anything, and CI would never notice if it stopped running as root or lost a tool the
//! test needs. `make test` run by root sets `ROSTFIX_TESTS_NEED_ROOT=1`; there a missing
//! privilege or tool fails the test. Elsewhere (a developer's `cargo test`) the test says
//! it was skipped and why.

#![forbid(unsafe_code)]

use std::path::Path;

/// The variable `make test` sets when it runs as root.
pub const NEED_ROOT_VAR: &str = "ROSTFIX_TESTS_NEED_ROOT";

/// True when the calling test can run: the process is root and every program in `tools`
/// exists. Otherwise panics under `make test` as root, or prints the reason and returns
/// false so the test can return.
pub fn root_with(tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    missing.extend(
        tools
            .iter()
            .filter(|t| !Path::new(t).exists())
            .map(|t| t.to_string()),
    );
    if missing.is_empty() {
        return true;
    }
    let why = format!("needs {}", missing.join(" and "));
    if std::env::var_os(NEED_ROOT_VAR).is_some_and(|v| v == "1") {
        panic!("{why}, and {NEED_ROOT_VAR}=1 says this run must have it");
    }
    eprintln!("skipped: {why}");
    false
}

/// [`root_with`] without tools.
pub fn root() -> bool {
    root_with(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named() {
        // Under `make test` as root this must panic; elsewhere it reports a skip.
        let required = std::env::var_os(NEED_ROOT_VAR).is_some_and(|v| v == "1");
        let outcome = std::panic::catch_unwind(|| root_with(&["/nonexistent/rostfix-tool"]));
        match outcome {
            Ok(ran) => {
                assert!(!required, "a missing tool passed under {NEED_ROOT_VAR}=1");
                assert!(!ran);
            }
            Err(_) => assert!(required),
        }
    }
}
