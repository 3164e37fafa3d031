"""smtpd_milters (issue 15): smtpd speaks the Sendmail milter protocol (v6) to the
milters of main.cf, as Postfix's MILTER_README wires them.

- OpenDKIM (Debian's opendkim) as `inet:127.0.0.1:PORT` signs mail from our domain;
  the delivered message's DKIM-Signature verifies (python3-dkim) against the public
  key the test dnsmasq publishes. Before this work smtpd_milters was a parameter
  nothing read: mail left unsigned.
- A milter that never answers and one that closes its connection in the middle of
  the body are handled by milter_default_action within the milter timeouts: accept
  delivers the mail, tempfail answers 451 4.7.1 and queues nothing; no session hangs.

The two broken milters are small socket servers here: a misbehaving peer cannot be
had from a package (a real libmilter program never stops answering on purpose)."""

import contextlib
import os
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
from harness import USER1, free_port, maildir_messages, wait_for  # noqa: E402

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
def opendkim(workdir):
    """Yields (milter port, [dnsmasq TXT options]) of an opendkim signing for
    rostfix.test with a fresh key."""
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
Mode s
Canonicalization relaxed/simple
RequireSafeKeys false
PidFile {keys / 'opendkim.pid'}
""")
    proc = subprocess.Popen([exe, "-f", "-x", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        def listening():
            if proc.poll() is not None:
                pytest.fail("opendkim exited: " + proc.stderr.read().decode(errors="replace"))
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False
        wait_for(listening, what="opendkim listening")
        chunks = _txt_chunks(keys / (SELECTOR + ".txt"))
        record = f"--txt-record={SELECTOR}._domainkey.rostfix.test," + ",".join(chunks)
        yield port, [record]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def _delivered(subject):
    for _, data in maildir_messages(USER1):
        if f"Subject: {subject}".encode() in data:
            return data
    return None


def test_opendkim_signs_and_signature_verifies(make_instance, workdir):
    import dkim

    with opendkim(workdir) as (milter_port, records), dnsmasq(records) as dns_port:
        inst = make_instance(main_extra={
            "smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "milter_default_action": "tempfail",
        })
        body = "Signed by OpenDKIM through smtpd_milters.\r\n" * 3
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.sendmail(f"alice@rostfix.test", [RCPT],
                       f"From: alice@rostfix.test\r\nTo: {RCPT}\r\n"
                       f"Subject: dkim-signed\r\n\r\n{body}")
        data = wait_for(lambda: _delivered("dkim-signed"), what="signed mail delivered")
        assert b"DKIM-Signature:" in data, data[:2000]
        assert f"s={SELECTOR};".encode() in data.replace(b" ", b"").replace(b"\n\t", b""), data
        message = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert dkim.verify(message, dnsfunc=_dns_txt(dns_port)), data[:2000]
        # The signature covers the body: a changed body no longer verifies.
        tampered = message.replace(b"Signed by OpenDKIM", b"Signed by someone")
        assert not dkim.verify(tampered, dnsfunc=_dns_txt(dns_port))


class BrokenMilter(threading.Thread):
    """A milter socket server that misbehaves: `mode` "silent" reads and never
    answers; "close-in-body" negotiates, answers CONTINUE to every event and closes
    the connection at the first body chunk."""

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
    time.sleep(1)
    assert _delivered("mid-body") is None
    assert inst.queue_ids() == []


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
