"""postscreen in front of smtpd, as Postfix configurations run it on port 25:
`smtp inet ... postscreen` plus `smtpd pass ... smtpd`. A client that talks before the
greeting is refused (PREGREET); a client listed in a DNSBL zone (served by a private
dnsmasq) over the threshold is refused; a clean client is handed to smtpd (its mail is
delivered) and, remembered in the cache, skips the tests next time (PASS OLD); the deep
pipelining test catches a client that pipelines without PIPELINING being offered."""

import re
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

import dns_server
from harness import BIN, USER1, maildir_messages, read_reply, wait_for

# Short waits keep the tests quick; Postfix's default greet wait is 6s.
BASE = {
    "postscreen_greet_wait": "1s",
    # Test clients come from 127.0.0.x: none of them is in mynetworks, so that the
    # default postscreen_access_list (permit_mynetworks) does not wave them through.
    "mynetworks": "192.0.2.1/32",
}


@pytest.fixture(scope="module")
def dnsbl():
    """127.0.0.2 is listed in zen.test and bl2.test; wl.test lists it with a code
    (127.0.0.2) outside the filter the tests give that site. Nothing else exists."""
    with dns_server.dnsmasq([
            "--host-record=2.0.0.127.zen.test,127.0.0.2",
            "--host-record=2.0.0.127.bl2.test,127.0.0.2",
            "--host-record=2.0.0.127.wl.test,127.0.0.2",
            "--local=/test/"]) as port:
        yield port


def screened(make_instance, main_extra):
    """An instance whose listening port is postscreen's, smtpd behind it as `pass`."""
    inst = make_instance(main_extra={**BASE, **main_extra}, start=False)
    master = inst.conf / "master.cf"
    text = master.read_text()
    smtpd_line = f"127.0.0.1:{inst.port} inet n - y - - smtpd\n"
    assert smtpd_line in text
    text = text.replace(smtpd_line,
                        f"127.0.0.1:{inst.port} inet n - y - 1 postscreen\n"
                        "smtpd     pass  -       -       y       -       -       smtpd\n")
    master.write_text(text)
    inst.start()
    return inst


def connect(inst, source):
    sock = socket.create_connection(("127.0.0.1", inst.port), timeout=30,
                                    source_address=(source, 0))
    return sock, sock.makefile("rb")


def log_has(inst, pattern):
    return re.search(pattern, inst.log_text()) is not None


def test_client_talking_before_the_greeting_is_refused(make_instance):
    inst = screened(make_instance, {"postscreen_greet_action": "drop",
                                    "postscreen_greet_wait": "3s"})
    sock, f = connect(inst, "127.0.0.3")
    with sock:
        first = f.readline()
        assert first.startswith(b"220-"), first
        sock.sendall(b"EHLO early.example\r\n")
        assert read_reply(f) == ["521 5.5.1 Protocol error"]
        assert f.readline() == b""
    port = sock.getsockname()[1]
    wait_for(lambda: log_has(inst, rf"DISCONNECT \[127\.0\.0\.3\]:{port}\b"),
             what="postscreen's DISCONNECT line")
    log = inst.log_text()
    assert re.search(rf"PREGREET 20 after [0-9.]+ from \[127\.0\.0\.3\]:{port}: "
                     r"EHLO early\.example\\r\\n", log), log
    # Never handed to smtpd.
    assert "[127.0.0.3]" not in "".join(l for l in log.splitlines() if "smtpd[" in l)


def test_dnsbl_listed_client_over_the_threshold_is_refused(make_instance, dnsbl):
    inst = screened(make_instance, {
        "rostfix_dns_servers": f"127.0.0.1:{dnsbl}",
        # 2 + 1 = 3 reaches the threshold; wl.test's filter does not match the
        # 127.0.0.2 answer, so its -5 does not count (else the rank would be -2).
        "postscreen_dnsbl_sites": "zen.test*2, bl2.test, wl.test=127.0.0.[5..6]*-5",
        "postscreen_dnsbl_threshold": "3",
        "postscreen_dnsbl_action": "enforce",
    })
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.2", 0)) as s:
        port = s.sock.getsockname()[1]
        s.ehlo("listed.example")
        assert s.mail("a@example.org")[0] == 250
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert (code, text) == (550, b"5.7.1 Service unavailable; client [127.0.0.2] "
                                     b"blocked using zen.test")
    log = inst.log_text()
    assert f"DNSBL rank 3 for [127.0.0.2]:{port}" in log, log
    assert (f"NOQUEUE: reject: RCPT from [127.0.0.2]:{port}: 550 5.7.1 Service "
            f"unavailable; client [127.0.0.2] blocked using zen.test; "
            f"from=<a@example.org>, to=<{USER1}@mx.rostfix.test>, proto=ESMTP, "
            f"helo=<listed.example>") in log, log
    assert not maildir_messages(USER1)


def test_clean_client_reaches_smtpd_and_the_cache_skips_the_tests(make_instance, dnsbl):
    inst = screened(make_instance, {
        "rostfix_dns_servers": f"127.0.0.1:{dnsbl}",
        "postscreen_dnsbl_sites": "zen.test",
        "postscreen_dnsbl_action": "drop",
        "postscreen_greet_action": "drop",
    })
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.1", 0)) as s:
        first_port = s.sock.getsockname()[1]
        # The greeting: postscreen's "220-" line, then smtpd's "220 " line.
        assert time.monotonic() - started >= 1.0
        s.ehlo("clean.example")
        assert s.mail("a@example.org")[0] == 250
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
        code, _ = s.data(b"Subject: screened\r\n\r\npassed postscreen\r\n")
        assert code == 250
    msgs = wait_for(lambda: maildir_messages(USER1), what=f"delivery to {USER1}")
    assert b"passed postscreen" in msgs[0][1]
    log = inst.log_text()
    assert f"PASS NEW [127.0.0.1]:{first_port}" in log, log
    # smtpd got the client's own socket: it sees the real client address.
    assert re.search(r"smtpd\[\d+\]: connect from \S*\[127\.0\.0\.1\]", log), log

    sock, f = connect(inst, "127.0.0.1")
    with sock:
        second_port = sock.getsockname()[1]
        greeting = read_reply(f)
        # No "220-" test banner this time: smtpd answers at once.
        assert len(greeting) == 1 and greeting[0].startswith("220 "), greeting
        sock.sendall(b"QUIT\r\n")
        assert read_reply(f)[0].startswith("221")
    log = inst.log_text()
    assert f"PASS OLD [127.0.0.1]:{second_port}" in log, log
    assert f"PASS NEW [127.0.0.1]:{second_port}" not in log


def test_pipelining_client_fails_the_deep_test_and_a_polite_one_passes(make_instance):
    inst = screened(make_instance, {
        "postscreen_pipelining_enable": "yes",
        "postscreen_pipelining_action": "enforce",
    })
    sock, f = connect(inst, "127.0.0.4")
    with sock:
        bad_port = sock.getsockname()[1]
        # postscreen's "220-" banner, then (after the wait) its own "220 " greeting.
        assert read_reply(f)[-1].startswith("220 ")
        sock.sendall(b"EHLO rude.example\r\nMAIL FROM:<a@example.org>\r\n")
        ehlo = read_reply(f)
        assert ehlo[0].startswith("250-") and "PIPELINING" not in " ".join(ehlo)
        assert read_reply(f) == ["250 2.1.0 Ok"]
        sock.sendall(f"RCPT TO:<{USER1}@mx.rostfix.test>\r\n".encode())
        assert read_reply(f) == ["550 5.5.1 Protocol error"]
        sock.sendall(b"QUIT\r\n")
        assert read_reply(f) == ["221 2.0.0 Bye"]
    log = inst.log_text()
    assert re.search(rf"COMMAND PIPELINING from \[127\.0\.0\.4\]:{bad_port} after EHLO: "
                     r"MAIL FROM:<a@example\.org>\\r\\n", log), log

    # A client that waits for each reply passes at RCPT (and is asked to come back).
    sock, f = connect(inst, "127.0.0.5")
    with sock:
        good_port = sock.getsockname()[1]
        assert read_reply(f)[-1].startswith("220 ")
        for command, want in [(b"EHLO polite.example", "250 "),
                              (b"MAIL FROM:<a@example.org>", "250 "),
                              (f"RCPT TO:<{USER1}@mx.rostfix.test>".encode(), "450 4.3.2"),
                              (b"QUIT", "221 ")]:
            sock.sendall(command + b"\r\n")
            assert read_reply(f)[-1].startswith(want), command
    wait_for(lambda: f"PASS NEW [127.0.0.5]:{good_port}" in inst.log_text(),
             what="PASS NEW for the polite client")
    # Next time it goes straight to smtpd, and its mail is taken.
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.5", 0)) as s:
        s.ehlo("polite.example")
        assert "pipelining" in s.esmtp_features  # smtpd's own EHLO
        assert s.mail("a@example.org")[0] == 250
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
    assert "PASS OLD [127.0.0.5]" in inst.log_text()
    assert f"PASS NEW [127.0.0.4]:{bad_port}" not in inst.log_text()


def test_denylisted_client_is_dropped(make_instance, tmp_path):
    table = tmp_path / "access.cidr"
    table.write_text("127.0.0.6/32 reject\n127.0.0.7 permit\n")
    table.chmod(0o644)
    tmp_path.chmod(0o755)
    inst = screened(make_instance, {
        "postscreen_access_list": f"permit_mynetworks, cidr:{table}",
        "postscreen_denylist_action": "drop",
    })
    sock, f = connect(inst, "127.0.0.6")
    with sock:
        port = sock.getsockname()[1]
        assert read_reply(f) == ["521 5.3.2 Service currently unavailable"]
    wait_for(lambda: f"DISCONNECT [127.0.0.6]:{port}" in inst.log_text(),
             what="DISCONNECT of the denylisted client")
    assert f"DENYLISTED [127.0.0.6]:{port}" in inst.log_text()
    # The permitted one goes straight to smtpd, without the greeting wait.
    sock, f = connect(inst, "127.0.0.7")
    with sock:
        port = sock.getsockname()[1]
        greeting = read_reply(f)
        assert len(greeting) == 1 and greeting[0].startswith("220 "), greeting
    assert f"ALLOWLISTED [127.0.0.7]:{port}" in inst.log_text()


def test_connection_limits_bound_the_clients_being_screened(make_instance):
    """One process screens every client, so the limits are what keeps a flood from
    taking it over: per address (postscreen_client_connection_count_limit) and in
    all (postscreen_pre_queue_limit)."""
    inst = screened(make_instance, {
        "postscreen_greet_wait": "4s",
        "postscreen_client_connection_count_limit": "1",
        "postscreen_pre_queue_limit": "2",
    })
    # The harness's readiness probe (from 127.0.0.1) holds a screening slot until
    # postscreen sees it gone, at the end of the greet wait: without this the first
    # client below could meet "all screening ports are busy" (seen once under load).
    wait_for(lambda: log_has(inst, r"DISCONNECT \[127\.0\.0\.1\]:"), timeout=30,
             what="the end of the readiness probe's screening")
    held = []
    try:
        for source in ["127.0.0.8", "127.0.0.9"]:
            sock, f = connect(inst, source)
            held.append(sock)
            assert f.readline().startswith(b"220-")
        sock, f = connect(inst, "127.0.0.8")
        with sock:
            assert read_reply(f) == ["421 4.7.0 Error: too many connections"]
            port = sock.getsockname()[1]
        assert f"NOQUEUE: reject: CONNECT from [127.0.0.8]:{port}: too many connections" \
            in inst.log_text()
        sock, f = connect(inst, "127.0.0.10")
        with sock:
            assert read_reply(f) == ["421 4.3.2 All screening ports are busy"]
            port = sock.getsockname()[1]
        assert f"reject: connect from [127.0.0.10]:{port}: all screening ports busy" \
            in inst.log_text()
    finally:
        for sock in held:
            sock.close()


def test_a_reload_lets_sessions_under_way_finish(make_instance):
    """After `rostfix reload` the old postscreen stops taking clients but finishes the
    ones it has (it used to exit at once, cutting them off), and the new one serves
    new clients."""
    inst = screened(make_instance, {"postscreen_pipelining_enable": "yes"})
    sock, f = connect(inst, "127.0.0.11")
    with sock:
        assert read_reply(f)[-1].startswith("220 ")
        inst.cmd("rostfix", "reload")
        wait_for(lambda: "reload -- version" in inst.log_text(), what="the reload")
        time.sleep(3)  # longer than the old process used to live after a reload
        for command, want in [(b"EHLO during.example", "250 "),
                              (b"MAIL FROM:<a@example.org>", "250 "),
                              (f"RCPT TO:<{USER1}@mx.rostfix.test>".encode(), "450 4.3.2"),
                              (b"QUIT", "221 ")]:
            sock.sendall(command + b"\r\n")
            got = read_reply(f)
            assert got and got[-1].startswith(want), (command, got)
    wait_for(lambda: "PASS NEW [127.0.0.11]" in inst.log_text(),
             what="PASS NEW from the old postscreen")
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.11", 0)) as s:
        assert s.ehlo("during.example")[0] == 250
    assert "PASS OLD [127.0.0.11]" in inst.log_text()


def test_import_keeps_postscreen_and_says_what_its_helpers_became(workdir):
    """Postfix's own postscreen set-up: `rostconf import` keeps postscreen and the
    smtpd pass service (before, it commented postscreen out and nothing listened on
    port 25), explains dnsblog and tlsproxy, and reports only the postscreen
    settings that do nothing."""
    source = Path(workdir) / "postscreen-src"
    target = Path(workdir) / "postscreen-dst"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    (source / "main.cf").write_text(
        "postscreen_access_list = permit_mynetworks, cidr:/etc/postfix/postscreen_access.cidr\n"
        "postscreen_blacklist_action = drop\n"
        "postscreen_greet_action = enforce\n"
        "postscreen_dnsbl_sites = zen.spamhaus.org*3 bl.mailspike.net\n"
        "postscreen_dnsbl_threshold = 3\n"
        "postscreen_dnsbl_action = enforce\n"
        "postscreen_upstream_proxy_protocol = haproxy\n"
        "postscreen_watchdog_timeout = 20s\n")
    (source / "postscreen_access.cidr").write_text("192.0.2.0/24 reject\n")
    (source / "master.cf").write_text(
        "smtp      inet  n       -       y       -       1       postscreen\n"
        "smtpd     pass  -       -       y       -       -       smtpd\n"
        "dnsblog   unix  -       -       y       -       0       dnsblog\n"
        "tlsproxy  unix  -       -       y       -       0       tlsproxy\n")
    proc = subprocess.run(
        [str(BIN / "rostconf"), "import", "-n", str(source), str(target)],
        capture_output=True, env={"PATH": "/usr/bin:/bin", "LANG": "C"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = proc.stdout.decode()
    assert "(postscreen): commented out" not in report, report
    assert "smtpd/pass" not in report or "smtpd/pass (smtpd): commented out" not in report
    for helper in ["dnsblog/unix (dnsblog)", "tlsproxy/unix (tlsproxy)"]:
        assert re.search(rf"{re.escape(helper)}: commented out: not needed, folded into "
                         r"postscreen", report), report
    section = report.split("Accepted but not implemented by Rostfix", 1)[1]
    assert "postscreen_watchdog_timeout = 20s" in section, report
    for implemented in ["postscreen_dnsbl_sites", "postscreen_greet_action",
                        "postscreen_upstream_proxy_protocol",
                        "postscreen_access_list", "postscreen_blacklist_action"]:
        assert implemented not in section, report
        assert f"unused parameter: {implemented}" not in report, report
