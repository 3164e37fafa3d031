"""spamass-milter (issue 15): Debian's spamass-milter in smtpd_milters, asking Debian's
spamd (SpamAssassin, local tests only, on a free port) through spamc, as a Postfix
site runs it. GTUBE scores far over the `-r` limit and is refused with
spamass-milter's own reply; a clean message is delivered with the X-Spam-* headers
spamass-milter adds."""

import contextlib
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import free_port, wait_for  # noqa: E402
from test_milter import GTUBE, RCPT, _daemon, _delivered  # noqa: E402


@contextlib.contextmanager
def _spamd(workdir):
    """spamd on a free port (network tests off, no user configs); yields the port."""
    exe = shutil.which("spamd", path="/usr/sbin:/usr/bin")
    if exe is None:
        pytest.skip("spamd not installed (tests/setup-deps.sh)")
    port = free_port()
    pid = Path(workdir) / "spamd.pid"
    proc = subprocess.Popen([exe, "-L", "-x", f"--listen=127.0.0.1:{port}", "-A", "127.0.0.1",
                             "-u", "nobody", "-s", "stderr", "-r", str(pid),
                             "--max-children=1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up():
            if proc.poll() is not None:
                pytest.fail("spamd exited")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False
        # spamd compiles its rules before it listens: seconds, not milliseconds.
        wait_for(up, timeout=90, what="spamd listening")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def spamass(workdir):
    """spamass-milter on a free port, refusing a score of 15 or more."""
    exe = shutil.which("spamass-milter", path="/usr/sbin:/usr/bin")
    if exe is None:
        pytest.skip("spamass-milter not installed (tests/setup-deps.sh)")
    with _spamd(workdir) as spamd_port:
        port = free_port()
        argv = [exe, "-p", f"inet:{port}@127.0.0.1", "-r", "15",
                "--", "-d", "127.0.0.1", "-p", str(spamd_port)]
        with _daemon(argv, port, "spamass-milter"):
            yield port


def test_spamass_milter_rejects_gtube_and_marks_ham(make_instance, spamass):
    inst = make_instance(main_extra={
        "smtpd_milters": f"inet:127.0.0.1:{spamass}",
        "milter_default_action": "tempfail",
        # spamd scans ham in a few seconds; room on a loaded machine.
        "milter_content_timeout": "120s",
    })
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("alice@rostfix.test")
        assert s.rcpt(RCPT)[0] == 250
        code, text = s.data(f"From: alice@rostfix.test\r\nTo: {RCPT}\r\nSubject: gtube\r\n"
                            f"\r\n{GTUBE}\r\n")
        assert (code, text) == (550, b"5.7.1 Blocked by SpamAssassin"), (code, text)
        s.rset()
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"From: alice@rostfix.test\r\nTo: {RCPT}\r\nSubject: ham\r\n"
                   "Message-ID: <ham@rostfix.test>\r\n\r\n"
                   "An ordinary message about the meeting on Tuesday.\r\n")
    ham = wait_for(lambda: _delivered("ham"), timeout=30, what="ham past spamass-milter")
    head = ham.partition(b"\n\n")[0]
    assert b"\nX-Spam-Checker-Version: SpamAssassin " in head, head
    assert b"\nX-Spam-Status: No, score=" in head, head
    assert _delivered("gtube") is None
    assert "milter-reject: END-OF-MESSAGE" in inst.log_text()
