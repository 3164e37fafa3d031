"""SASL peers for the AUTH tests: the built-in passwd-file and a real Dovecot.

The Dovecot instance runs as root from its own config dir (DEPENDENCIES.md): a
passwd-file passdb with SHA512-CRYPT hashes, a static userdb, no protocols served, and
its auth-client socket placed inside the Rostfix instance's queue directory
(`private/auth`), where the chrooted smtpd reaches it as smtpd_sasl_path. It is stopped
by the PID in its base_dir's master.pid.
"""

import base64
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from harness import wait_for, MAIL_OWNER

PASSWORD = "c0rrect-Horse-b4ttery"


def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def write_passwd(path, users):
    """users: {name: password}; written as `name:{SHA512-CRYPT}hash`, root-only."""
    lines = [f"{u}:{{SHA512-CRYPT}}{sha512_crypt(p)}" for u, p in users.items()]
    Path(path).write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def plain_blob(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class Dovecot:
    """A private Dovecot auth server whose client socket is `queue/private/auth`."""

    def __init__(self, base, queue_dir, users):
        self.dir = Path(base) / "dovecot"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.run_dir = self.dir / "run"
        self.socket = Path(queue_dir) / "private" / "auth"
        passwd = write_passwd(self.dir / "users", users)
        # Dovecot's auth process runs as its internal user, not root.
        internal = pwd.getpwnam("dovecot")
        os.chown(passwd, internal.pw_uid, internal.pw_gid)
        owner = pwd.getpwnam(MAIL_OWNER)
        conf = f"""# written by tests/e2e/saslpeer.py
instance_name = rostfix-e2e-{os.getpid()}-{id(self)}
base_dir = {self.run_dir}
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home=/nonexistent
}}
service auth {{
  unix_listener {self.socket} {{
    mode = 0660
    user = {MAIL_OWNER}
    group = {MAIL_OWNER}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(conf)
        self.started = False

    def start(self):
        exe = shutil.which("dovecot") or "/usr/sbin/dovecot"
        # Dovecot daemonizes; its output goes to a file, not a pipe, which the daemon
        # would hold open (and subprocess would wait on) until it stops.
        with open(self.dir / "startup.log", "wb") as out:
            proc = subprocess.run([exe, "-c", str(self.conf)], stdout=out, stderr=out,
                                  stdin=subprocess.DEVNULL, timeout=60)
        if proc.returncode != 0:
            startup = (self.dir / "startup.log").read_text(errors="replace")
            raise AssertionError(f"dovecot did not start: {startup}\n{self.log()}")
        self.started = True
        wait_for(self.socket.exists, timeout=20, what="dovecot's auth socket")

    def log(self):
        try:
            return (self.dir / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if not self.started:
            return
        pidfile = self.run_dir / "master.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.started = False
