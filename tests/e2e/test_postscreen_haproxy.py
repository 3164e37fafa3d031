"""postscreen behind HAProxy (postscreen_upstream_proxy_protocol = haproxy), as mailcow
runs it: the real HAProxy connects from 127.0.0.1 and names the real client in a PROXY
header (send-proxy and send-proxy-v2). postscreen's CONNECT line, its access list and
its cache use that client; the connection handed to smtpd carries the client's
endpoints with it, so smtpd's log and Received name the real client too."""

import re
import select
import smtplib
import socket
import tempfile
import time
from pathlib import Path

import pytest

import harness
from harness import USER1, maildir_messages, read_reply, wait_for


@pytest.fixture
def behind_haproxy(make_instance, workdir):
    """An instance with postscreen on a port of its own behind HAProxy (v1 and v2
    frontends), smtpd as its `pass` service, and an access list refusing 127.0.0.1:
    the address every proxied connection comes from, and that of one test client. The
    instance's usual smtpd port stays as it is (the harness's readiness probe)."""
    d = Path(tempfile.mkdtemp(prefix="ps-haproxy-", dir=workdir))
    d.chmod(0o755)
    access = d / "access.cidr"
    access.write_text("127.0.0.1/32 reject\n")
    access.chmod(0o644)
    # smtpd's own restriction, which must see the client postscreen passed on.
    (d / "client").write_text("127.0.0.4 REJECT refused by smtpd\n")
    (d / "client").chmod(0o644)
    postscreen = harness.free_port()
    inst = make_instance(main_extra={
        "postscreen_greet_wait": "1s",
        "postscreen_access_list": f"permit_mynetworks, cidr:{access}",
        "postscreen_denylist_action": "drop",
        "postscreen_upstream_proxy_timeout": "2s",
        "smtpd_client_restrictions": f"check_client_access texthash:{d}/client",
        # No test client is in mynetworks (permit_mynetworks would skip the tests).
        "mynetworks": "192.0.2.1/32",
    }, master_extra=(
        f"127.0.0.1:{postscreen} inet n - y - 1 postscreen"
        " -o postscreen_upstream_proxy_protocol=haproxy\n"
        "smtpd     pass  -       -       y       -       -       smtpd\n"))
    with harness.haproxy_in_front(d, postscreen) as ports:
        inst.proxy_ports = dict(ports, postscreen=postscreen)
        yield inst


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_postscreen_and_smtpd_see_the_client_behind_haproxy(behind_haproxy, version):
    inst = behind_haproxy
    port = inst.proxy_ports[version]

    # 127.0.0.1 through the proxy: the access list's reject applies to it.
    sock = socket.create_connection(("127.0.0.1", port), timeout=20,
                                    source_address=("127.0.0.1", 0))
    with sock:
        denied_port = sock.getsockname()[1]
        assert read_reply(sock.makefile("rb")) == ["521 5.3.2 Service currently unavailable"]
    wait_for(lambda: f"DENYLISTED [127.0.0.1]:{denied_port}" in inst.log_text(),
             what="DENYLISTED for the proxied 127.0.0.1")

    # 127.0.0.3 through the same proxy (whose own address, 127.0.0.1, is refused): it
    # is screened as itself, passes, and smtpd takes its mail as 127.0.0.3's.
    subject = f"postscreen behind haproxy {version}"
    with smtplib.SMTP("127.0.0.1", port, timeout=30,
                      source_address=("127.0.0.3", 0)) as s:
        client_port = s.sock.getsockname()[1]
        s.ehlo("proxied.example")
        assert s.mail("a@example.org")[0] == 250
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
        code, _ = s.data(f"Subject: {subject}\r\n\r\nscreened as itself\r\n".encode())
        assert code == 250
    data = wait_for(lambda: next((d for _, d in maildir_messages(USER1)
                                  if subject.encode() in d), None), what="delivery")
    assert re.search(rb"Received: from proxied\.example \(\S+ \[127\.0\.0\.3\]\)", data), \
        data[:400]
    log = inst.log_text()
    # The server side is the HAProxy frontend the client connected to.
    assert (f"CONNECT from [127.0.0.3]:{client_port} to [127.0.0.1]:{port}") in log, log
    assert f"PASS NEW [127.0.0.3]:{client_port}" in log, log
    assert f"DENYLISTED [127.0.0.3]" not in log
    assert re.search(r"smtpd\[\d+\]: connect from \S+\[127\.0\.0\.3\]", log), log
    assert re.search(r"smtpd\[\d+\]: \w+: client=\S+\[127\.0\.0\.3\]", log), log

    # The cache holds the real client: next time it goes straight to smtpd.
    sock = socket.create_connection(("127.0.0.1", port), timeout=20,
                                    source_address=("127.0.0.3", 0))
    with sock:
        again = sock.getsockname()[1]
        f = sock.makefile("rb")
        greeting = read_reply(f)
        assert len(greeting) == 1 and greeting[0].startswith("220 "), greeting
        sock.sendall(b"QUIT\r\n")
        assert read_reply(f)[0].startswith("221")
    assert f"PASS OLD [127.0.0.3]:{again}" in inst.log_text()

    # 127.0.0.4 passes postscreen, and smtpd's client restriction refuses it by its
    # real address (the socket's peer is HAProxy's 127.0.0.1, which the table lacks).
    with smtplib.SMTP("127.0.0.1", port, timeout=30,
                      source_address=("127.0.0.4", 0)) as s:
        s.ehlo("refused.example")
        assert s.mail("a@example.org")[0] == 250
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert code == 554 and b"Client host rejected: refused by smtpd" in text, text
    assert re.search(r"smtpd\[\d+\]: NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.4\]",
                     inst.log_text()), inst.log_text()


def test_a_bad_or_missing_proxy_header_is_refused(behind_haproxy):
    """Straight at postscreen's port, without HAProxy: no client can be named, so
    postscreen says 421 and hangs up, as Postfix's does."""
    inst = behind_haproxy
    direct = inst.proxy_ports["postscreen"]
    sock = socket.create_connection(("127.0.0.1", direct), timeout=20)
    with sock:
        sock.sendall(b"PROXY TCP4 300.1.1.1 127.0.0.1 1 25\r\nEHLO x\r\n")
        assert read_reply(sock.makefile("rb")) == ["421 4.3.2 No system resources"]
    wait_for(lambda: "haproxy read: bad or missing client address: "
             "PROXY TCP4 300.1.1.1 127.0.0.1 1 25\\r\\n" in inst.log_text(),
             what="the bad header's warning")
    # A v1 line is at most 107 bytes: one without its LF by then is refused unread.
    # (Exactly 107 bytes are sent, so none is left unread to make the close a reset.)
    long_line = b"PROXY TCP4 127.0.0.9 127.0.0.1 1 25" + b" " * 72
    sock = socket.create_connection(("127.0.0.1", direct), timeout=20)
    with sock:
        sock.sendall(long_line)
        assert read_reply(sock.makefile("rb")) == ["421 4.3.2 No system resources"]
    wait_for(lambda: "haproxy read: missing protocol header terminator: PROXY TCP4 "
             "127.0.0.9 127.0.0.1 1 25 " in inst.log_text(), what="the long line's warning")

    # A client that says nothing is cut off after postscreen_upstream_proxy_timeout.
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", direct), timeout=20)
    with sock:
        assert read_reply(sock.makefile("rb")) == ["421 4.3.2 No system resources"]
    assert 1.5 < time.monotonic() - started < 10
    wait_for(lambda: "postscreen" in inst.log_text()
             and "warning: haproxy read: time limit exceeded" in inst.log_text(),
             what="the timeout's warning")

    # One that trickles a byte at a time is cut off at the same overall limit, not
    # per byte: the header's read has one deadline.
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", direct), timeout=20)
    with sock:
        for byte in b"PROXY TCP4 127.0.0.9 127.0.0.1 1 25\r\n":
            readable, _, _ = select.select([sock], [], [], 0.3)
            if readable:
                break
            sock.sendall(bytes([byte]))
        assert read_reply(sock.makefile("rb")) == ["421 4.3.2 No system resources"]
    assert 1.5 < time.monotonic() - started < 5
    wait_for(lambda: inst.log_text().count("warning: haproxy read: time limit exceeded")
             >= 2, what="the trickle's timeout warning")
    assert "CONNECT from" not in "".join(
        l for l in inst.log_text().splitlines() if f":{direct}" in l)


V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def test_a_v2_local_header_speaks_for_the_connection_itself(behind_haproxy):
    """A v2 LOCAL header (HAProxy's health checks with send-proxy-v2) names no client:
    postscreen screens the connection's own peer, here 127.0.0.1 (denylisted) and
    127.0.0.5 (not), instead of refusing the header."""
    inst = behind_haproxy
    direct = inst.proxy_ports["postscreen"]
    local = V2_SIGNATURE + bytes([0x20, 0x00]) + (0).to_bytes(2, "big")
    sock = socket.create_connection(("127.0.0.1", direct), timeout=20,
                                    source_address=("127.0.0.1", 0))
    with sock:
        port = sock.getsockname()[1]
        sock.sendall(local)
        assert read_reply(sock.makefile("rb")) == ["521 5.3.2 Service currently unavailable"]
    wait_for(lambda: f"DENYLISTED [127.0.0.1]:{port}" in inst.log_text(),
             what="the LOCAL connection screened as its own peer")

    sock = socket.create_connection(("127.0.0.1", direct), timeout=20,
                                    source_address=("127.0.0.5", 0))
    with sock:
        port = sock.getsockname()[1]
        # LOCAL with an address block anyway (allowed): its addresses are ignored.
        block = bytes([127, 0, 0, 9, 127, 0, 0, 1]) + (1).to_bytes(2, "big") + (25).to_bytes(2, "big")
        sock.sendall(V2_SIGNATURE + bytes([0x20, 0x11]) + len(block).to_bytes(2, "big") + block)
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220-")
    log = inst.log_text()
    assert f"CONNECT from [127.0.0.5]:{port} to [127.0.0.1]:{direct}" in log, log
    assert "[127.0.0.9]" not in log
