//! End-to-end tests of the master binary as whatever user runs them: the pid lock
//! (second start refused, removed on stop), SIGHUP keeps it running, detaching, and the
//! child protocol (fd layout, argv, env, status records, wake-ups, generations,
//! throttling) with a small Python stand-in service (skipped without python3).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MASTER: &str = env!("CARGO_BIN_EXE_master");
const PYTHON: &str = "/usr/bin/python3";

/// A stand-in service speaking master's protocol: logs how it was started, accepts on
/// fd 4, reports TAKEN/AVAIL on fd 3, exits after 3 idle seconds or when master is gone.
const SERVICE: &str = r#"#!/usr/bin/python3
import os, select, socket, stat, struct, sys
here = os.path.dirname(os.path.abspath(sys.argv[0]))
name = os.path.basename(sys.argv[0])
pid, gen = os.getpid(), int(os.environ["GENERATION"])
def log(text):
    with open(os.path.join(here, "events"), "a") as f:
        f.write(f"{name} {pid} {text}\n")
status_is_pipe = stat.S_ISFIFO(os.fstat(3).st_mode)
listen_is_socket = stat.S_ISSOCK(os.fstat(4).st_mode)
log(f"start gen={gen} fds={os.environ['LISTEN_FDS']} pipe={status_is_pipe} sock={listen_is_socket} "
    f"config={os.environ['MAIL_CONFIG']} args={' '.join(sys.argv[1:])}")
if name == "bounce":
    sys.exit(1)
lst = socket.socket(fileno=4)
while True:
    ready, _, _ = select.select([lst, 3], [], [], 3)
    if not ready:
        sys.exit(0)
    if 3 in ready:
        log("master gone")
        sys.exit(0)
    try:
        conn, _ = lst.accept()
    except BlockingIOError:
        continue
    os.write(3, struct.pack("<iIc", pid, gen, b"T"))
    conn.setblocking(True)
    conn.settimeout(2)
    if name == "smtpd":
        conn.sendall(b"hello\n")
    try:
        data = conn.recv(64)
    except OSError:
        data = b""
    log(f"got {data.hex()}")
    conn.close()
    os.write(3, struct.pack("<iIc", pid, gen, b"A"))
"#;

struct Setup {
    base: PathBuf,
    conf: PathBuf,
    queue: PathBuf,
    bin: PathBuf,
}

impl Setup {
    fn new(tag: &str, master_cf: &str) -> Setup {
        let base = std::env::temp_dir().join(format!("master-it-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (conf, queue, bin) = (base.join("etc"), base.join("queue"), base.join("bin"));
        // rostfix check creates the queue directories; master expects them.
        for dir in [&conf, &bin, &queue.join("private"), &queue.join("public")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        let main = format!(
            "queue_directory = {}\ndaemon_directory = {}\nmaillog_file = {}\nmail_owner = {user}\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nservice_throttle_time = 1s\n",
            queue.display(),
            bin.display(),
            base.join("maillog").display()
        );
        std::fs::write(conf.join("main.cf"), main).unwrap();
        std::fs::write(conf.join("master.cf"), master_cf).unwrap();
        Setup {
            base,
            conf,
            queue,
            bin,
        }
    }

    fn install_service(&self, name: &str) {
        let path = self.bin.join(name);
        std::fs::write(&path, SERVICE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn master(&self, args: &[&str]) -> Command {
        let mut command = Command::new(MASTER);
        command.arg("-c").arg(&self.conf).args(args);
        command
    }

    fn start_foreground(&self) -> Child {
        let child = self
            .master(&["-d"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("master to lock its pid file", || self.running());
        child
    }

    fn running(&self) -> bool {
        self.master(&["-t"]).status().unwrap().code() == Some(1)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.base.join("maillog")).unwrap_or_default()
    }

    fn events(&self) -> String {
        std::fs::read_to_string(self.bin.join("events")).unwrap_or_default()
    }

    fn pid_file(&self) -> PathBuf {
        self.queue.join("pid").join("master.pid")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::env::var_os("KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "master did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lock_reload_and_stop_with_zero_services() {
    let setup = Setup::new("zero", "# nothing runs\ncleanup unix n - n - 0 cleanup\n");
    assert!(!setup.running());
    let mut master = setup.start_foreground();
    let pid_text = std::fs::read_to_string(setup.pid_file()).unwrap();
    assert_eq!(pid_text.trim().parse::<u32>().unwrap(), master.id());

    // A second master refuses to start, foreground or not.
    for args in [&["-d"][..], &[][..]] {
        let out = setup.master(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("fatal: the Rostfix mail system is already running"),
            "{err}"
        );
    }

    // SIGHUP reloads and keeps running.
    signal(&master, nix::sys::signal::Signal::SIGHUP);
    wait_for("the reload log line", || {
        setup.log().contains("reload -- version 0.1.0")
    });
    assert!(setup.running());
    assert!(master.try_wait().unwrap().is_none());

    // A broken master.cf on reload: logged, old configuration kept.
    std::fs::write(
        setup.conf.join("master.cf"),
        "smtp inet n - n - - smtpd extra\nbogus line\n",
    )
    .unwrap();
    signal(&master, nix::sys::signal::Signal::SIGHUP);
    wait_for("the reload error", || setup.log().contains("reload failed"));
    assert!(setup.running());

    signal(&master, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(wait_exit(&mut master), 0);
    assert!(!setup.pid_file().exists(), "pid file removed on stop");
    assert!(!setup.running());
    let log = setup.log();
    assert!(
        log.contains("daemon started -- version 0.1.0, configuration"),
        "{log}"
    );
    assert!(
        log.contains("service cleanup/unix (cleanup) is not supported yet; skipped"),
        "{log}"
    );
    assert!(log.contains("terminating on signal 15"), "{log}");
    let uid = nix::unistd::geteuid();
    let warned = format!("warning: not running as root: services run as uid {uid} without chroot");
    assert_eq!(log.contains(&warned), !uid.is_root(), "{log}");
    let mut stderr = String::new();
    master
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn detaches_once_ready_and_reports_startup_errors() {
    let setup = Setup::new("detach", "");
    let out = setup.master(&[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(setup.running());
    let pid: i32 = std::fs::read_to_string(setup.pid_file())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = setup.master(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for("the detached master to stop", || !setup.running());

    // A startup error reaches the parent's stderr and exit status.
    std::fs::write(setup.conf.join("master.cf"), "imap inet n - n - - smtpd\n").unwrap();
    std::fs::write(setup.bin.join("smtpd"), "").unwrap();
    let out = setup.master(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("master.cf, line 1") && err.contains("imap/inet"),
        "{err}"
    );
    assert!(!setup.running());
}

#[test]
fn spawns_services_with_the_documented_protocol() {
    if !Path::new(PYTHON).exists() {
        eprintln!("skipped: {PYTHON} is needed for the stand-in service");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master_cf = format!(
        "pickup unix n - n 1 1 pickup\n\
         bounce unix - - n - 0 bounce\n\
         127.0.0.1:{port} inet n - n - - smtpd -o smtpd_banner=x -v\n"
    );
    let setup = Setup::new("spawn", &master_cf);
    for name in ["pickup", "bounce", "smtpd"] {
        setup.install_service(name);
    }
    let mut master = setup.start_foreground();
    let conf = std::fs::canonicalize(&setup.conf).unwrap();

    // pickup: started by the wake-up master sends at once, which it then receives.
    wait_for("pickup to receive a wake-up", || {
        setup.events().contains("got 000000")
    });
    let events = setup.events();
    let start = format!(
        "start gen=1 fds=1 pipe=True sock=True config={} args=-n pickup -t unix -u -l",
        conf.display()
    );
    assert!(events.contains(&start), "{events}");
    // The frame: 4-byte length then the JSON of Trigger::Wakeup.
    let mut frame = Vec::new();
    rostfix_proto::write_message(&mut frame, &rostfix_proto::Trigger::Wakeup).unwrap();
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    assert!(events.contains(&format!("got {hex}")), "{events}");

    // inet: a client connection makes master fork smtpd, which serves it.
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 6];
    client.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"hello\n");
    client.write_all(b"hi").unwrap();
    drop(client);
    wait_for("smtpd to log the client", || {
        setup.events().contains("got 6869")
    });
    assert!(
        setup.events().contains("args=-n 127.0.0.1:"),
        "{}",
        setup.events()
    );
    assert!(
        setup.events().contains("-t inet -u -o smtpd_banner=x -v"),
        "{}",
        setup.events()
    );

    // A service that dies before serving anyone is throttled.
    let bounce = setup.queue.join("private").join("bounce");
    let _conn = std::os::unix::net::UnixStream::connect(&bounce).unwrap();
    wait_for("the throttle warning", || {
        setup
            .log()
            .contains("bounce: bad command startup -- throttling")
    });
    assert!(setup.log().contains("bounce pid "), "{}", setup.log());
    assert!(
        setup.events().contains("args=-n bounce -t unix -u -z"),
        "{}",
        setup.events()
    );

    // SIGHUP: a new generation; wake-ups go on and reach generation-2 children.
    signal(&master, nix::sys::signal::Signal::SIGHUP);
    wait_for("a generation 2 pickup", || {
        setup.events().contains("start gen=2")
    });

    signal(&master, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(wait_exit(&mut master), 0);
    assert!(!bounce.exists(), "unix sockets removed on stop");
    assert!(!setup.queue.join("public").join("pickup").exists());
    assert!(!setup.pid_file().exists());
}
