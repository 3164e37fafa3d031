"""A bare CR never goes out on the wire (issue 12 items 9 and 10): smtpd and sendmail
keep a bare CR as content, and the smtp client sends every line ending as CR LF and a
bare CR inside a line as a space (RFC 5321 2.3.8; Postfix's smtp client does the same),
so a downstream server that ends lines on CR cannot be handed `\\r.\\r` as an end of
data. The relay target is tests/e2e/smtpsink.py, which records the raw DATA bytes."""

import re
import socket

from harness import USER1, free_port, wait_for
from smtpsink import Sink

# The smuggling sequence of a server that ends lines at CR, then a hidden command.
BODY = b"before\r.\rMAIL FROM:<evil@attacker.example>\r\nafter the sequence\r\n"


def assert_clean_wire(raw):
    assert raw.endswith(b"\r\n.\r\n"), raw[-40:]
    assert not re.search(rb"\r(?!\n)", raw), raw
    assert not re.search(rb"(?<!\r)\n", raw), raw
    # The whole message arrived as one: the sequence stayed inside a line.
    assert b"\r\nbefore . MAIL FROM:<evil@attacker.example>\r\nafter the sequence\r\n.\r\n" in raw, raw
    assert raw.count(b"\r\n.\r\n") == 1


def smtp_with_bare_cr(port, rcpt):
    """DATA with a bare CR over a raw socket, waiting for each reply (no pipelining)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line[3:4] != b"-":
                return line

    try:
        assert reply().startswith(b"220")
        for cmd in [b"EHLO client.test", b"MAIL FROM:<alice@example.org>", f"RCPT TO:<{rcpt}>".encode()]:
            s.sendall(cmd + b"\r\n")
            assert reply().startswith(b"250"), cmd
        s.sendall(b"DATA\r\n")
        assert reply().startswith(b"354")
        s.sendall(b"Subject: bare cr via smtpd\r\n\r\n" + BODY + b".\r\n")
        assert reply().startswith(b"250 2.0.0 Ok: queued")
        s.sendall(b"QUIT\r\n")
        reply()
    finally:
        s.close()


def test_bare_cr_is_never_relayed(make_instance):
    port = free_port()
    sink = Sink(port)
    try:
        inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{port}"})
        smtp_with_bare_cr(inst.port, "r1@remote.example")
        proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf),
                          "-f", f"{USER1}@mx.rostfix.test", "r2@remote.example"],
                         user=USER1, input=b"Subject: bare cr via sendmail\n\n" + BODY.replace(b"\r\n", b"\n"))
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: len(sink.raw) >= 2, timeout=40, what="both messages at the sink")
        for raw in sink.raw:
            assert_clean_wire(raw)
        subjects = b"".join(sink.raw)
        assert b"bare cr via smtpd" in subjects and b"bare cr via sendmail" in subjects
    finally:
        sink.stop()
