"""Policy delegation and sender login maps end to end (issue 13, part 1):
check_policy_service against a real postgrey (greylisting: 450 first, then 250 once
the delay has passed, with postgrey's PREPEND header above our Received:), against
Debian's policyd-spf (postfix-policyd-spf-python, unpacked by
tests/fetch-policyd-spf.sh, run per connection by our spawn(8) service as Ubuntu's guide
wires it, its DNS pointed at the test dnsmasq: SPF fail is refused
with 550 5.7.23, a pass gets its Received-SPF header), a policy
server that hangs or talks garbage (default_action after the time limit), and
smtpd_sender_login_maps refusing an authenticated user who sends as someone else,
from a hash table and from a pcre table, with Postfix's reply texts."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import harness
from dns_server import dnsmasq
from harness import USER1, maildir_messages, wait_for
from saslpeer import PASSWORD, write_passwd

POSTGREY = "/usr/sbin/postgrey"


@pytest.fixture
def postgrey(workdir):
    """A postgrey on a free port with a one-second delay and a database of its own."""
    if not Path(POSTGREY).exists():
        pytest.skip("postgrey not installed (tests/setup-deps.sh)")
    db = Path(tempfile.mkdtemp(prefix="postgrey-", dir=workdir))
    shutil.chown(db, user="postgrey")
    port = harness.free_port()
    proc = subprocess.Popen(
        [POSTGREY, f"--inet=127.0.0.1:{port}", "--delay=1", f"--dbdir={db}",
         f"--pidfile={db}/pid", "--user=postgrey"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return proc.poll() is not None

    wait_for(listening, what="postgrey listening")
    if proc.poll() is not None:
        pytest.fail("postgrey did not start: " + proc.stderr.read().decode(errors="replace"))
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_postgrey_greylists_then_accepts(make_instance, postgrey):
    inst = make_instance(main_extra={
        "smtpd_recipient_restrictions":
            f"reject_unauth_destination, check_policy_service inet:127.0.0.1:{postgrey}",
    })
    rcpt = f"{USER1}@mx.rostfix.test"
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("grey@sender.test")
        code, text = s.rcpt(rcpt)
        assert code == 450, (code, text)
        assert f"<{rcpt}>: Recipient address rejected: Greylisted".encode() in text, text
        s.rset()
    assert re.search(r"NOQUEUE: reject: RCPT from \S+: 450 4\.2\.0 <[^>]+>: Recipient address "
                     r"rejected: Greylisted", inst.log_text()), inst.log_text()[-2000:]
    time.sleep(2.2)
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail("grey@sender.test", [rcpt],
                   "Subject: greylist-passed\r\n\r\nsecond try\r\n")

    def delivered():
        for _, data in maildir_messages(USER1):
            if b"Subject: greylist-passed" in data:
                return data
        return None

    data = wait_for(delivered, what="greylisted message delivered")
    # postgrey's PREPEND lands above our own Received:, as with Postfix.
    head = data.split(b"\n\n", 1)[0]
    assert head.index(b"X-Greylist: delayed") < head.index(b"Received: from"), head


class StuckServer:
    """A policy server that accepts and then hangs (or answers garbage)."""

    def __init__(self, answer=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.answer is not None:
                try:
                    c.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("answer", [None, b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100000])
def test_broken_policy_server_gives_default_action(make_instance, answer):
    server = StuckServer(answer)
    try:
        inst = make_instance(main_extra={
            "smtpd_recipient_restrictions":
                "reject_unauth_destination, check_policy_service "
                f"{{ inet:127.0.0.1:{server.port}, timeout=2s, try_limit=1 }}",
        })
        rcpt = f"{USER1}@mx.rostfix.test"
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail("x@sender.test")
            start = time.monotonic()
            code, text = s.rcpt(rcpt)
            took = time.monotonic() - start
        assert (code, text) == (
            451, f"4.3.5 <{rcpt}>: Recipient address rejected: Server configuration problem"
            .encode()), (code, text)
        # A hung server is given up on at the time limit, not smtpd_timeout.
        assert took < 10, took
        if answer is None:
            assert took >= 1.5, took
    finally:
        server.close()


@pytest.mark.parametrize("table", ["hash", "pcre"])
def test_sender_login_maps(make_instance, workdir, table):
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    os_users = {"alice@rostfix.test": PASSWORD, "bob@rostfix.test": PASSWORD}
    maps_dir = Path(tempfile.mkdtemp(prefix="login-", dir=workdir))
    if table == "hash":
        src = maps_dir / "senders"
        src.write_text("alice@rostfix.test alice@rostfix.test\n"
                       "bob@rostfix.test bob@rostfix.test\n")
    else:
        src = maps_dir / "senders.pcre"
        src.write_text("/^(alice|bob)@rostfix\\.test$/ $1@rostfix.test\n")
    inst = make_instance(main_extra={
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "rostfix",
        "smtpd_sasl_path": str(write_passwd(sasl_dir / "passwd", os_users)),
        "mynetworks": "127.0.0.1/32",
        "smtpd_sender_login_maps": f"{table}:{src}",
        "smtpd_sender_restrictions": "reject_sender_login_mismatch",
        "smtpd_delay_reject": "no",
    }, start=False)
    if table == "hash":
        inst.cmd("rostmap", f"hash:{src}")
    inst.start()
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("client.test")
        # Not logged in, an owned address is refused.
        code, text = s.mail("bob@rostfix.test")
        assert (code, text) == (553, b"5.7.1 <bob@rostfix.test>: Sender address rejected: "
                                     b"not logged in"), (code, text)
        s.user, s.password = "alice@rostfix.test", PASSWORD
        assert s.auth("PLAIN", s.auth_plain, initial_response_ok=True)[0] == 235
        code, text = s.mail("bob@rostfix.test")
        assert (code, text) == (553, b"5.7.1 <bob@rostfix.test>: Sender address rejected: "
                                     b"not owned by user alice@rostfix.test"), (code, text)
        assert s.mail("alice@rostfix.test")[0] == 250
    assert "NOQUEUE: reject: MAIL from unknown[127.0.0.2]: 553 5.7.1 <bob@rostfix.test>: " \
           "Sender address rejected: not owned by user alice@rostfix.test;" in inst.log_text()


# Runs policyd-spf with pydns (what python3-spf uses when dnspython is absent) pointed
# at the test dnsmasq: policyd-spf has no resolver setting of its own, and pydns reads
# only /etc/resolv.conf, so the defaults are overridden before policyd-spf starts.
# pyspf resolves through dnspython when that is installed (python3-dkim pulls it in)
# and through pydns otherwise: point whichever it uses at the test's dnsmasq.
SPF_WRAPPER = """
import sys, runpy
import spf, DNS
port = int(sys.argv.pop(1))
DNS.defaults['server'] = ['127.0.0.1']
DNS.defaults['port'] = port
try:
    import dns.resolver
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ['127.0.0.1']
    resolver.port = port
    dns.resolver.default_resolver = resolver
except ImportError:
    pass
sys.argv[0] = 'policyd-spf'
runpy.run_path(sys.argv.pop(1), run_name='__main__')
"""

SPF_CONF = """debugLevel = 1
TestOnly = 1
HELO_reject = Off
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.0/24
"""


@pytest.fixture
def policyd_spf(workdir):
    """policyd-spf as Ubuntu's guide wires it: a master.cf spawn(8) service
    (`policyd-spf unix - n n - 0 spawn user=nobody argv=...`) that runs one policyd-spf
    per connection on its standard streams, named by smtpd as
    check_policy_service unix:private/policyd-spf. Yields the master.cf entry."""
    here = Path(__file__).resolve().parent.parent
    fetched = subprocess.run([str(here / "fetch-policyd-spf.sh")], capture_output=True, text=True)
    if fetched.returncode != 0:
        pytest.skip("postfix-policyd-spf-python unavailable: " + fetched.stderr.strip())
    script = Path(fetched.stdout.strip()) / "usr/bin/policyd-spf"
    probe = subprocess.run(["/usr/bin/python3", "-c", "import spf, DNS, spf_engine"])
    if probe.returncode != 0:
        pytest.skip("python3-spf-engine not installed (tests/setup-deps.sh)")
    folder = Path(tempfile.mkdtemp(prefix="spf-", dir=workdir))
    os.chmod(folder, 0o755)
    conf = folder / "policyd-spf.conf"
    conf.write_text(SPF_CONF)
    wrapper = folder / "policyd-spf-wrapper.py"
    wrapper.write_text(SPF_WRAPPER)
    # The command runs as nobody, and the checkout (tests/.cache) may sit under a
    # folder nobody cannot enter (CI clones under /root): run a copy from here.
    copied = folder / "policyd-spf"
    shutil.copyfile(script, copied)
    for f in (conf, wrapper, copied):
        os.chmod(f, 0o644)
    records = [
        '--txt-record=spf-fail.test,v=spf1 ip4:192.0.2.1 -all',
        '--txt-record=spf-pass.test,v=spf1 ip4:127.0.0.1 -all',
    ]
    with dnsmasq(records) as dns_port:
        yield (f"policyd-spf unix - n n - 0 spawn user=nobody argv=/usr/bin/python3 "
               f"{wrapper} {dns_port} {copied} {conf}\n")


def test_policyd_spf_rejects_spf_fail(make_instance, policyd_spf):
    inst = make_instance(main_extra={
        "smtpd_recipient_restrictions":
            "reject_unauth_destination, check_policy_service unix:private/policyd-spf",
        # Ubuntu's guide sets it so: policyd-spf may take its time on slow DNS.
        "policyd-spf_time_limit": "3600",
    }, master_extra=policyd_spf)
    rcpt = f"{USER1}@mx.rostfix.test"
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("someone@spf-fail.test")
        code, text = s.rcpt(rcpt)
        assert code == 550, (code, text)
        assert text.startswith(f"5.7.23 <{rcpt}>: Recipient address rejected: "
                               "Message rejected due to: SPF fail".encode()), text
        s.rset()
        s.sendmail("someone@spf-pass.test", [rcpt],
                   "Subject: spf-passed\r\n\r\nfrom an authorized address\r\n")

    def delivered():
        for _, data in maildir_messages(USER1):
            if b"Subject: spf-passed" in data:
                return data
        return None

    data = wait_for(delivered, what="SPF pass delivered")
    assert b"Received-SPF: Pass" in data, data[:1500]
    # The per-service time limit is read by spawn: no "unused parameter" alarm.
    assert "policyd-spf_time_limit" not in inst.log_text(), inst.log_text()[-2000:]
