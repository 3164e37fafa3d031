"""LMTP delivery to a real Dovecot (issue 4, "What must be shown" 4): Debian's
dovecot-lmtpd and dovecot-imapd started by the test as root with their own config
directory, a passwd-file user database and a Maildir under the test directory, the
LMTP socket inside the instance's queue directory (private/dovecot-lmtp, where the
chrooted lmtp agent reaches it). Mail for the instance's own domain goes through
local_transport = lmtp:unix:private/dovecot-lmtp and is then read with imaplib over
Dovecot's IMAP on a loopback high port. Everything is stopped at the end."""

import imaplib
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import USER1, free_port, maildir_messages, wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
pytestmark = pytest.mark.skipif(
    not (Path(DOVECOT).exists() and Path("/usr/lib/dovecot/lmtp").exists()
         and Path("/usr/lib/dovecot/imap").exists()),
    reason="dovecot-lmtpd/dovecot-imapd not installed (tests/setup-deps.sh)")

PASSWORD = "imap-pw"


def dovecot_conf(d, socket, imap_port, uid, gid):
    return f"""# written by tests/e2e/test_lmtp.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = rostfix-test-{imap_port}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%n
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {socket} {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


@pytest.fixture
def dovecot(workdir):
    """Yields a function start(socket_path) -> imap_port; stops Dovecot at the end."""
    procs = []
    d = Path(tempfile.mkdtemp(prefix="dovecot-", dir=workdir))
    d.chmod(0o755)

    def start(socket):
        pw = pwd.getpwnam(USER1)
        (d / "mail").mkdir()
        (d / "mail").chmod(0o1777)
        (d / "users").write_text(
            f"{USER1}:{{PLAIN}}{PASSWORD}:{pw.pw_uid}:{pw.pw_gid}::{d}/mail/{USER1}::\n")
        imap_port = free_port()
        conf = d / "dovecot.conf"
        conf.write_text(dovecot_conf(d, socket, imap_port, pw.pw_uid, pw.pw_gid))
        proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=open(d / "stderr", "wb"))
        procs.append(proc)
        wait_for(lambda: Path(socket).exists() or proc.poll() is not None, timeout=20,
                 what="Dovecot's LMTP socket")
        if proc.poll() is not None:
            raise RuntimeError("dovecot exited: " + (d / "stderr").read_text()
                               + (d / "dovecot.log").read_text() if (d / "dovecot.log").exists()
                               else "")
        return imap_port

    start.dir = d
    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def imap_messages(port):
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(USER1, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(RFC822)")
            out.append(parts[0][1])
        return out
    finally:
        try:
            imap.logout()
        except Exception:
            pass


def test_lmtp_to_dovecot_then_read_over_imap(make_instance, dovecot):
    inst = make_instance(main_extra={
        "local_transport": "lmtp:unix:private/dovecot-lmtp",
    })
    imap_port = dovecot(str(inst.queue / "private" / "dovecot-lmtp"))
    with inst.smtp() as s:
        refused = s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"],
                             b"Subject: through LMTP\r\n\r\nhello dovecot\r\n")
    assert refused == {}
    msgs = wait_for(lambda: imap_messages(imap_port), timeout=40,
                    what="the message in Dovecot's INBOX")
    assert b"Subject: through LMTP" in msgs[0]
    assert b"hello dovecot" in msgs[0]
    # The agent logs once the LMTP transaction is over, which can be a moment after
    # Dovecot shows the message over IMAP.
    line = (rf"rostfix/lmtp\[\d+\]: [0-9A-F]+: to=<{USER1}@mx\.rostfix\.test>, "
            r"relay=mx\.rostfix\.test\[private/dovecot-lmtp\], delay=[\d.]+, "
            r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 ")
    wait_for(lambda: re.search(line, inst.log_text()), timeout=20,
             what="the lmtp delivery log line")
    inst.wait_queue_empty()


def test_lmtp_unknown_user_bounces_per_recipient(make_instance, dovecot):
    inst = make_instance(main_extra={
        "local_transport": "lmtp:unix:private/dovecot-lmtp",
        # Dovecot knows the users, not the system: smtpd must not check them itself.
        "local_recipient_maps": "",
    })
    imap_port = dovecot(str(inst.queue / "private" / "dovecot-lmtp"))
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test", "nosuchuser@mx.rostfix.test"],
                   b"Subject: two recipients\r\n\r\nbody\r\n")
    wait_for(lambda: imap_messages(imap_port), timeout=40, what="the good recipient's copy")
    wait_for(lambda: "to=<nosuchuser@mx.rostfix.test>" in inst.log_text(), what="the bounce line")
    assert re.search(r"to=<nosuchuser@mx\.rostfix\.test>, relay=mx\.rostfix\.test\[private/"
                     r"dovecot-lmtp\], .*dsn=5\.1\.1, status=bounced \(host mx\.rostfix\.test"
                     r"\[private/dovecot-lmtp\] said: 550 5\.1\.1 ", inst.log_text()), inst.log_text()


def test_mailbox_transport_passes_local_users_to_dovecot_lmtp(make_instance, dovecot):
    """mailbox_transport = lmtp:unix:private/dovecot-lmtp (the Ubuntu/Dovecot guides'
    LMTP variant): local expands aliases, then hands the user's mail to the lmtp agent,
    which logs the delivery; the mail is in Dovecot's store (IMAP), not in a mailbox of
    local's; an unknown name goes to fallback_transport, whose 5.1.1 bounces."""
    inst = make_instance(main_extra={
        "mailbox_transport": "lmtp:unix:private/dovecot-lmtp",
        "fallback_transport": "lmtp:unix:private/dovecot-lmtp",
        "local_recipient_maps": "",
    }, start=False)
    # texthash: postmap's format (no colon), as the harness's alias_maps is.
    (inst.conf / "aliases").write_text(f"info {USER1}\n")
    inst.start()
    imap_port = dovecot(str(inst.queue / "private" / "dovecot-lmtp"))
    before = len(maildir_messages(USER1))
    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["info@mx.rostfix.test"],
                   b"Subject: via mailbox_transport\r\n\r\nhello dovecot\r\n")
    msgs = wait_for(lambda: imap_messages(imap_port), timeout=40,
                    what="the message in Dovecot's INBOX")
    assert b"Subject: via mailbox_transport" in msgs[0]
    line = (rf"rostfix/lmtp\[\d+\]: [0-9A-F]+: to=<{USER1}@mx\.rostfix\.test>, "
            r"orig_to=<info@mx\.rostfix\.test>, relay=mx\.rostfix\.test\[private/dovecot-lmtp\], "
            r"delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent ")
    wait_for(lambda: re.search(line, inst.log_text()), timeout=20,
             what="the lmtp delivery log line")
    inst.wait_queue_empty()
    # local wrote no line of its own for it, and nothing into the user's Maildir.
    assert not re.search(r"rostfix/local\[\d+\]: [0-9A-F]+: to=<.*status=sent", inst.log_text())
    assert len(maildir_messages(USER1)) == before

    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["nosuchuser@mx.rostfix.test"],
                   b"Subject: nobody\r\n\r\nbody\r\n")
    wait_for(lambda: re.search(r"rostfix/lmtp\[\d+\]: [0-9A-F]+: to=<nosuchuser@mx\.rostfix\.test>,"
                               r" .*dsn=5\.1\.1, status=bounced", inst.log_text()),
             what="the fallback transport's bounce")
    inst.wait_queue_empty()
