"""smtpd_milters (issue 15): smtpd speaks the Sendmail milter protocol (v6) to the
milters of main.cf, as Postfix's MILTER_README wires them.

- OpenDKIM (Debian's opendkim) as `inet:127.0.0.1:PORT` signs mail from our domain;
  the delivered message's DKIM-Signature verifies (python3-dkim) against the public
  key the test dnsmasq publishes. Before this work smtpd_milters was a parameter
  nothing read: mail left unsigned.
- A milter that never answers and one that closes its connection in the middle of
  the body are handled by milter_default_action within the milter timeouts: accept
  delivers the mail, tempfail answers 451 4.7.1 and queues nothing; no session hangs.
- A libmilter program (python3-milter) sees the macros and gets every reply and
  modification applied; rspamd's milter rejects GTUBE and lets ham through.

The two broken milters are small socket servers here: a misbehaving peer cannot be
had from a package (a real libmilter program never stops answering on purpose)."""

import contextlib
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dns_server import dnsmasq  # noqa: E402
from harness import USER1, USER2, free_port, maildir_messages, wait_for  # noqa: E402

RCPT = f"{USER1}@rostfix.test"
SELECTOR = "e2e"


def _txt_chunks(txt_file):
    """The TXT record text opendkim-genkey wrote (quoted pieces joined), in pieces a
    DNS character-string holds."""
    text = txt_file.read_text()
    inner = text[text.index("(") + 1:text.index(")")]
    value = "".join(part for i, part in enumerate(inner.split('"')) if i % 2 == 1)
    return [value[i:i + 200] for i in range(0, len(value), 200)]


@contextlib.contextmanager
def _daemon(argv, port, what):
    """Runs `argv` (a milter) until the block ends, once it listens on `port`."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def listening():
            if proc.poll() is not None:
                pytest.fail(f"{what} exited: " + proc.stderr.read().decode(errors="replace"))
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False
        # Generous: rspamd and spamd load their rules first, and the machine is shared.
        wait_for(listening, timeout=60, what=f"{what} listening")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def opendkim(workdir):
    """Yields (milter port, [dnsmasq TXT options]) of an opendkim signing for
    rostfix.test with a fresh key (mail from 127.0.0.1) and verifying (from others)."""
    exe = shutil.which("opendkim", path="/usr/sbin:/usr/bin")
    if exe is None:
        pytest.skip("opendkim not installed (tests/setup-deps.sh)")
    keys = Path(workdir) / "dkim"
    keys.mkdir(exist_ok=True)
    subprocess.run(["opendkim-genkey", "-b", "1024", "-D", str(keys), "-d", "rostfix.test",
                    "-s", SELECTOR], check=True)
    port = free_port()
    conf = keys / "opendkim.conf"
    conf.write_text(f"""Syslog no
Socket inet:{port}@127.0.0.1
Domain rostfix.test
Selector {SELECTOR}
KeyFile {keys / (SELECTOR + '.private')}
Mode sv
AlwaysAddARHeader yes
AuthservID mx.rostfix.test
Canonicalization relaxed/simple
RequireSafeKeys false
PidFile {keys / 'opendkim.pid'}
""")
    with _daemon([exe, "-f", "-x", str(conf)], port, "opendkim"):
        chunks = _txt_chunks(keys / (SELECTOR + ".txt"))
        record = f"--txt-record={SELECTOR}._domainkey.rostfix.test," + ",".join(chunks)
        yield port, [record]


def _dns_txt(dns_port):
    """dkimpy's dnsfunc, asking the test dnsmasq only."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_port

    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        answer = resolver.resolve(name, "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in answer)
    return lookup


def assert_opendkim_signed(data, dns_port):
    """`data` (as delivered) carries OpenDKIM's signature with our selector, dkimpy
    verifies it, and a changed body no longer does."""
    import dkim

    assert b"DKIM-Signature:" in data, data[:2000]
    assert f"s={SELECTOR};".encode() in data.replace(b" ", b"").replace(b"\n\t", b""), data
    message = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert dkim.verify(message, dnsfunc=_dns_txt(dns_port)), data[:2000]
    tampered = message.replace(b"Signed by OpenDKIM", b"Signed by someone")
    assert not dkim.verify(tampered, dnsfunc=_dns_txt(dns_port))


def _delivered(subject, user=USER1):
    for _, data in maildir_messages(user):
        if f"Subject: {subject}".encode() in data:
            return data
    return None


def test_opendkim_signs_and_signature_verifies(make_instance, workdir):
    with opendkim(workdir) as (milter_port, records), dnsmasq(records) as dns_port:
        inst = make_instance(main_extra={
            "smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "milter_default_action": "tempfail",
        })
        body = "Signed by OpenDKIM through smtpd_milters.\r\n" * 3
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.sendmail("alice@rostfix.test", [RCPT],
                       f"From: alice@rostfix.test\r\nTo: {RCPT}\r\n"
                       f"Subject: dkim-signed\r\n\r\n{body}")
        data = wait_for(lambda: _delivered("dkim-signed"), what="signed mail delivered")
        assert_opendkim_signed(data, dns_port)
        # Mail from outside (not OpenDKIM's InternalHosts) is verified, not signed:
        # OpenDKIM's Authentication-Results reaches the mailbox.
        with inst.smtp(source_address="127.0.0.2") as s:
            s.ehlo("outside.test")
            s.sendmail("bob@outside.test", [RCPT],
                       f"From: bob@outside.test\r\nTo: {RCPT}\r\nSubject: inbound\r\n\r\nhi\r\n")
        data = wait_for(lambda: _delivered("inbound"), what="inbound mail delivered")
        assert b"Authentication-Results: mx.rostfix.test; dkim=none" in data, data[:2000]
        assert b"DKIM-Signature:" not in data, data[:2000]


class BrokenMilter(threading.Thread):
    """A milter socket server that misbehaves: `mode` "silent" reads and never
    answers; "close-in-body" negotiates, answers CONTINUE to every event and closes
    the connection at the first body chunk; "garbage" answers MAIL with noise."""

    def __init__(self, mode):
        super().__init__(daemon=True)
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed_in_body = threading.Event()
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _packet(conn):
        head = conn.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return None, None
        (length,) = struct.unpack(">I", head)
        data = conn.recv(length, socket.MSG_WAITALL)
        return data[:1], data[1:]

    def serve(self, conn):
        with contextlib.suppress(OSError):
            while True:
                code, data = self._packet(conn)
                if code is None:
                    return
                if self.mode == "silent":
                    continue
                if self.mode == "garbage" and code == b"M":
                    # A length far past the packet limit, then noise.
                    conn.sendall(b"\xff\xff\xff\xf0garbage")
                    continue
                if code == b"O":
                    # Version 6, no modifications, every event with a reply.
                    reply = b"O" + struct.pack(">III", 6, 0, 0)
                elif code == b"B":
                    self.closed_in_body.set()
                    conn.close()
                    return
                elif code in (b"D", b"A", b"Q"):
                    continue  # macros, abort, quit: no reply
                else:
                    reply = b"c"
                conn.sendall(struct.pack(">I", len(reply)) + reply)

    def close(self):
        self.sock.close()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()


@pytest.fixture
def broken():
    made = []

    def factory(mode):
        m = BrokenMilter(mode)
        made.append(m)
        return m
    yield factory
    for m in made:
        m.close()


def test_silent_milter_default_accept_delivers(make_instance, broken):
    milter = broken("silent")
    inst = make_instance(main_extra={
        "smtpd_milters": f"{{ inet:127.0.0.1:{milter.port}, default_action=accept }}",
        "milter_default_action": "tempfail",
        "milter_connect_timeout": "2s",
        "milter_command_timeout": "2s",
    })
    started = time.monotonic()
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"To: {RCPT}\r\nSubject: silent-accept\r\n\r\nhello\r\n")
    # One negotiation timeout, then the milter is out of the session.
    assert time.monotonic() - started < 15
    wait_for(lambda: _delivered("silent-accept"), what="mail past a silent milter")
    assert "milter" in inst.log_text()


def test_silent_milter_default_tempfail_refuses(make_instance, broken):
    milter = broken("silent")
    inst = make_instance(main_extra={
        "smtpd_milters": f"inet:127.0.0.1:{milter.port}",
        "milter_default_action": "tempfail",
        "milter_connect_timeout": "2s",
        "milter_command_timeout": "2s",
    })
    started = time.monotonic()
    with inst.smtp() as s:
        s.ehlo("client.test")
        code, text = s.docmd("MAIL FROM:<alice@rostfix.test>")
        assert code == 451, (code, text)
        assert text.startswith(b"4.7.1 "), text
    assert time.monotonic() - started < 15
    assert inst.queue_ids() == []
    assert f"warning: milter inet:127.0.0.1:{milter.port}: timed out during negotiation" \
        in inst.log_text(), inst.log_text()[-2000:]


def test_milter_closing_in_body_default_tempfail(make_instance, broken):
    milter = broken("close-in-body")
    inst = make_instance(main_extra={
        "smtpd_milters": f"inet:127.0.0.1:{milter.port}",
        "milter_default_action": "tempfail",
        "milter_content_timeout": "5s",
    })
    started = time.monotonic()
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("alice@rostfix.test")
        code, _ = s.rcpt(RCPT)
        assert code == 250
        code, text = s.data(f"To: {RCPT}\r\nSubject: mid-body\r\n\r\nbody text\r\n")
        assert code == 451, (code, text)
        assert text.startswith(b"4.7.1 "), text
    assert milter.closed_in_body.is_set()
    assert time.monotonic() - started < 15
    assert f"warning: milter inet:127.0.0.1:{milter.port}: connection closed by the milter " \
        "during body" in inst.log_text(), inst.log_text()[-2000:]
    time.sleep(1)
    assert _delivered("mid-body") is None
    assert inst.queue_ids() == []


def test_garbage_milter_default_reject(make_instance, broken):
    milter = broken("garbage")
    inst = make_instance(main_extra={
        "smtpd_milters": f"{{ inet:127.0.0.1:{milter.port}, default_action=reject }}",
    })
    with inst.smtp() as s:
        s.ehlo("client.test")
        code, text = s.docmd("MAIL FROM:<alice@rostfix.test>")
        assert (code, text) == (550, b"5.7.1 Command rejected"), (code, text)
        # The milter is out: its default action answers the rest of the session.
        code, text = s.docmd("MAIL FROM:<alice@rostfix.test>")
        assert code == 550, (code, text)
    assert "exceeds the limit during mail" in inst.log_text(), inst.log_text()[-2000:]


def test_milter_closing_in_body_default_accept(make_instance, broken):
    milter = broken("close-in-body")
    inst = make_instance(main_extra={
        "smtpd_milters": f"inet:127.0.0.1:{milter.port}",
        "milter_default_action": "accept",
    })
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"To: {RCPT}\r\nSubject: mid-body-accept\r\n\r\nbody text\r\n")
    assert milter.closed_in_body.is_set()
    wait_for(lambda: _delivered("mid-body-accept"), what="mail past a failed milter")


@contextlib.contextmanager
def pymilter_peer(*flags):
    """The libmilter test milter (pymilter_peer.py) on a free port, with `flags`
    (leadspc, rcptrej); yields the port."""
    try:
        import Milter  # noqa: F401
    except ImportError:
        pytest.skip("python3-milter not installed (tests/setup-deps.sh)")
    port = free_port()
    argv = [sys.executable, str(Path(__file__).parent / "pymilter_peer.py"), str(port),
            f"{USER2}@rostfix.test", *flags]
    with _daemon(argv, port, "pymilter peer"):
        yield port


@pytest.fixture(scope="module")
def pymilter():
    with pymilter_peer() as port:
        yield port


def test_libmilter_modifications_applied(make_instance, pymilter):
    inst = make_instance(main_extra={"smtpd_milters": f"inet:127.0.0.1:{pymilter}"})
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"To: {RCPT}\r\nSubject: edit-me\r\nX-Change: first\r\n"
                   "X-Change: second\r\nX-Delete: gone\r\n\r\noriginal body\r\n")
    # The first recipient was deleted, the added one got the message.
    data = wait_for(lambda: _delivered("edit-me", USER2), what="edited mail delivered")
    assert _delivered("edit-me") is None
    head, _, body = data.partition(b"\n\n")
    assert body == b"replaced by the milter\n", data
    assert b"Return-Path: <changed@rostfix.test>" in head, head
    assert b"X-Change: first\n" in head and b"X-Change: changed by milter\n" in head, head
    assert b"X-Delete" not in head and b"X-Milter-Top: inserted" in head, head
    macros = [line for line in head.split(b"\n") if line.startswith(b"X-Milter-Macros:")]
    assert macros, head
    qid = inst.log_text().split(": client=")[0].split()[-1]
    assert macros[0] == (f"X-Milter-Macros: i={qid} j=mx.rostfix.test "
                         "mail_addr=alice@rostfix.test daemon_name=mx.rostfix.test").encode(), \
        (macros, qid)


def test_libmilter_replies(make_instance, pymilter):
    inst = make_instance(main_extra={"smtpd_milters": f"inet:127.0.0.1:{pymilter}"})
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("alice@rostfix.test")
        code, text = s.rcpt(f"{USER2}@rostfix.test")
        assert (code, text) == (550, b"5.7.9 blocked by the test milter"), (code, text)
        assert s.rcpt(RCPT)[0] == 250
        code, text = s.data(f"To: {RCPT}\r\nSubject: reject-me\r\n\r\nx\r\n")
        assert (code, text) == (550, b"5.7.1 Command rejected"), (code, text)
        s.rset()
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"To: {RCPT}\r\nSubject: discard-me\r\n\r\nx\r\n")
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"To: {RCPT}\r\nSubject: quarantine-me\r\n\r\nx\r\n")
    log = inst.log_text()
    assert "milter-reject: RCPT from" in log, log[-3000:]
    assert "milter-discard: END-OF-MESSAGE" in log, log[-3000:]
    assert "milter-hold: END-OF-MESSAGE" in log, log[-3000:]
    wait_for(lambda: len(inst.queue_ids("hold")) == 1, what="quarantined mail on hold")
    time.sleep(1)
    assert _delivered("discard-me") is None and _delivered("quarantine-me") is None


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def rspamd(workdir):
    """Debian's rspamd (its milter proxy and scanner, no controller) on free ports
    with a private run/db directory; the stock rules otherwise."""
    exe = shutil.which("rspamd", path="/usr/bin:/usr/sbin")
    if exe is None:
        pytest.skip("rspamd not installed (tests/setup-deps.sh)")
    base = Path(workdir) / "rspamd"
    for sub in ("local.d", "run", "db"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    port, scanner = free_port(), free_port()
    conf = Path("/etc/rspamd/rspamd.conf").read_text()
    for stock, ours in (("11333", f"{scanner}"),
                        ("11334", f"{free_port()}\";\n    enabled = false; #"),
                        ("11332", f"{port}"),
                        ("11335", f"{free_port()}")):
        conf = conf.replace(f'bind_socket = "localhost:{stock}', f'bind_socket = "127.0.0.1:{ours}')
    (base / "rspamd.conf").write_text(conf)
    # The milter proxy hands each message to the scanner worker on its free port.
    (base / "local.d" / "worker-proxy.inc").write_text(
        f'upstream "local" {{\n  default = yes;\n  hosts = "127.0.0.1:{scanner}";\n}}\n')
    (base / "local.d" / "logging.inc").write_text('type = "console";\nlevel = "warning";\n')
    # rspamd's result headers on the mail it passes (X-Spamd-Result and friends).
    (base / "local.d" / "milter_headers.conf").write_text(
        "extended_spam_headers = true;\nskip_local = false;\nskip_authenticated = false;\n")
    argv = [exe, "-f", "-i", "-u", "root", "-g", "root", "-c", str(base / "rspamd.conf")]
    for var, path in (("LOCAL_CONFDIR", base), ("DBDIR", base / "db"), ("RUNDIR", base / "run"),
                      ("LOGDIR", base)):
        argv += ["--var", f"{var}={path}"]
    with _daemon(argv, port, "rspamd"):
        def scanner_up():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", scanner), 1):
                return True
            return False
        wait_for(scanner_up, timeout=60, what="rspamd's scanner worker")
        yield port


def test_rspamd_rejects_gtube(make_instance, rspamd):
    inst = make_instance(main_extra={
        "smtpd_milters": f"inet:127.0.0.1:{rspamd}",
        "milter_default_action": "tempfail",
    })
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("alice@rostfix.test")
        assert s.rcpt(RCPT)[0] == 250
        code, text = s.data(f"To: {RCPT}\r\nSubject: gtube\r\n\r\n{GTUBE}\r\n")
        assert code == 554 and text.startswith(b"5.7.1 "), (code, text)
        s.rset()
        s.sendmail("alice@rostfix.test", [RCPT],
                   f"From: alice@rostfix.test\r\nTo: {RCPT}\r\nSubject: ham\r\n\r\n"
                   "An ordinary message.\r\n")
    ham = wait_for(lambda: _delivered("ham"), what="ham past rspamd")
    assert b"\nX-Spamd-Result: default: False [" in ham, ham[:2000]
    assert _delivered("gtube") is None
    assert "milter-reject: END-OF-MESSAGE" in inst.log_text()


def test_unedited_message_kept_byte_for_byte(make_instance, pymilter):
    """A milter that changes nothing leaves the content as the client sent it, raw
    8-bit header bytes included (the parsed form would turn them into U+FFFD)."""
    inst = make_instance(main_extra={"smtpd_milters": f"inet:127.0.0.1:{pymilter}"})
    raw = (f"To: {RCPT}\r\nSubject: latin1\r\nX-Latin1: caf\xe9\r\n\r\nbody\r\n"
           .encode("latin-1"))
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail("alice@rostfix.test", [RCPT], raw)
    data = wait_for(lambda: _delivered("latin1"), what="8-bit header mail delivered")
    assert b"X-Latin1: caf\xe9\n\nbody\n" in data, data
