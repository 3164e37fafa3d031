//! A command delivery leaves no thread behind, even when a daemon the command
//! started keeps its input and output pipes open without reading (which pinned a
//! copy of the message in a blocked writer thread forever). Its own test binary:
//! with one test, the process's thread count is not disturbed by parallel tests.

use rostfix_local::command::{run_command, CommandSpec};
use rostfix_local::privileges::Identity;
use std::time::{Duration, Instant};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn a_daemon_holding_the_pipes_pins_no_thread() {
    if !std::path::Path::new("/proc/self/task").is_dir() || which("setsid").is_none() {
        eprintln!("note: needs /proc and setsid; skipped");
        return;
    }
    let before = threads();
    // 4 MiB of input the daemon never reads; the daemon leaves the process group, so
    // the time-limit kill does not reach it either.
    let input = vec![b'x'; 4 << 20];
    let pidfile = std::env::temp_dir().join(format!("rostfix-cmd-threads-{}", std::process::id()));
    let command = format!("setsid sleep 30 & echo $! > {}; exit 0", pidfile.display());
    let spec = CommandSpec {
        command: &command,
        shell: "",
        ident: Identity::current(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: None,
        input: &input,
        time_limit: Duration::from_secs(20),
        file_size_limit: 0,
    };
    let start = Instant::now();
    let result = run_command(&spec);
    let took = start.elapsed();
    let after = threads();
    // The daemon is ours to end (setsid in a background job execs in place, so $!
    // is its pid).
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _ = std::fs::remove_file(&pidfile);
    assert!(result.is_ok(), "{result:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(after, before, "a helper thread outlived the delivery");
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
}
