"""A private amavisd-new for the content-filter tests: the Debian package's daemon run
in the foreground with a config file of the test's own (port, forward_method, log file,
$MYHOME under the test directory), every scanner bypassed so it only relays. Its
config sits in a root-owned directory, as amavisd refuses one its user could write."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import free_port, wait_for

CONFIG = """use strict;
$MYHOME = '{home}';
$TEMPBASE = "$MYHOME/tmp";
$db_home = "$MYHOME/db";
$helpers_home = "$MYHOME/var";
$pid_file = "$MYHOME/amavisd.pid";
$lock_file = "$MYHOME/amavisd.lock";
$daemon_user = 'amavis';
$daemon_group = 'amavis';
$mydomain = 'rostfix.test';
$myhostname = 'amavis.rostfix.test';
$max_servers = 1;
$do_syslog = 0;
$LOGFILE = "$MYHOME/amavis.log";
$log_level = 2;
$inet_socket_bind = '127.0.0.1';
$inet_socket_port = {port};
@inet_acl = qw(127.0.0.1);
$forward_method = 'smtp:[127.0.0.1]:{forward}';
$notify_method = $forward_method;
@bypass_spam_checks_maps = (1);
@bypass_banned_checks_maps = (1);
@bypass_header_checks_maps = (1);
@bypass_virus_checks_maps = (1);
@av_scanners = ();
@av_scanners_backup = ();
$enable_db = 0;
$enable_zmq = 0;
$enable_dkim_verification = 0;
$enable_dkim_signing = 0;
@local_domains_maps = (['.rostfix.test']);
@mynetworks = qw(127.0.0.0/8);
1;
"""


class Amavis:
    def __init__(self, home, port):
        self.home = home
        self.port = port

    def log_text(self):
        path = self.home / "amavis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def amavisd(base, forward_port):
    """Yields an Amavis listening on a free port and forwarding to `forward_port`;
    skips the test when amavisd-new is not installed (tests/setup-deps.sh)."""
    exe = shutil.which("amavisd", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if exe is None:
        pytest.skip("amavisd-new not installed (tests/setup-deps.sh)")
    try:
        pw = pwd.getpwnam("amavis")
    except KeyError:
        pytest.skip("no amavis user (the amavisd-new package makes it)")
    top = Path(tempfile.mkdtemp(prefix="amavis-", dir=base))
    os.chmod(top, 0o755)
    etc, home = top / "etc", top / "home"
    etc.mkdir(mode=0o755)
    home.mkdir()
    for sub in ["tmp", "db", "var"]:
        (home / sub).mkdir()
    for d in [home, home / "tmp", home / "db", home / "var"]:
        os.chown(d, pw.pw_uid, pw.pw_gid)
    port = free_port()
    conf = etc / "amavisd.conf"
    conf.write_text(CONFIG.format(home=home, port=port, forward=forward_port))
    os.chmod(conf, 0o644)
    proc = subprocess.Popen([exe, "-c", str(conf), "foreground"], cwd=str(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    am = Amavis(home, port)
    try:
        try:
            wait_for(lambda: proc.poll() is not None or _listening(port), timeout=60,
                     what="amavisd to listen")
        except AssertionError:
            pass
        if not _listening(port):
            pytest.fail("amavisd did not start:\n" + am.log_text()[-3000:])
        yield am
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Its children (Net::Server workers) follow the parent's TERM; give them time.
        time.sleep(0.2)
        shutil.rmtree(top, ignore_errors=True)
