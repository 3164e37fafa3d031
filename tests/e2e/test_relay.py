"""Relay control and restriction lists end to end (issue 3, "What must be shown" 2):
from 127.0.0.2 with mynetworks = 127.0.0.1/32 every attempt of an open-relay battery
is refused and logged the Postfix way; the same recipients are accepted after AUTH.
Plus access tables, a DNSBL and an unknown sender domain against a local dnsmasq, and a
misspelt restriction name stopping smtpd with a message naming the parameter."""

import re
import smtplib
import tempfile
from pathlib import Path

import pytest

import dns_server
import harness
from harness import USER1, wait_for
from saslpeer import PASSWORD, write_passwd

LOGIN = "relay-user"

# Local parts and domains that try to sneak mail past a relay check. mydestination is
# mx.rostfix.test, localhost.rostfix.test, localhost, rostfix.test; inet_interfaces is
# 127.0.0.1. Postfix's resolver strips a local domain (or our own [address]) and then
# opens a quoted local part, swaps a bang path and applies the percent hack, so every
# one of these resolves to victim@far-away.test (or another foreign domain): 554 5.7.1
# from a stranger, 250 after AUTH. None is a syntax error. smtpd ignores a source route
# (RFC 5321 4.1.1.3), so its reply names the address without it.
BATTERY = [
    "victim@far-away.test",                       # plain foreign domain
    "victim%far-away.test@mx.rostfix.test",       # percent hack
    "far-away.test!victim@mx.rostfix.test",       # bang path
    "far-away.test!victim",                       # bang path, no domain
    "victim%far-away.test",                       # percent hack, no domain
    '"victim@far-away.test"@mx.rostfix.test',     # quoted @
    '"victim@far-away.test"',                     # quoted @, no domain
    "@mx.rostfix.test:victim@far-away.test",      # source route (RFC 5321 ignores it)
    "@mx.rostfix.test,@localhost:victim@far-away.test",
    "victim@FAR-AWAY.TEST",                       # different case
    "victim@far-away.test.",                      # trailing dot
    "victim@mx.rostfix.test.far-away.test",       # our name as a prefix
    "victim@[IPv6:::1]",                          # address literal, not our interface
    "victim%far-away.test@[127.0.0.1]",
    "victim@far-away.test@mx.rostfix.test",       # two @
]


@pytest.fixture
def relay(make_instance, workdir):
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    path = write_passwd(sasl_dir / "sasl_passwd", {LOGIN: PASSWORD})
    return make_instance(main_extra={
        "mynetworks": "127.0.0.1/32",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "rostfix",
        "smtpd_sasl_path": str(path),
        "smtpd_relay_restrictions":
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
    })


def refused(s, addr):
    code, text = s.docmd("RCPT", f"TO:<{addr}>")
    return code, text


def without_route(addr):
    return addr.rsplit(":", 1)[1] if addr.startswith("@") else addr


def test_open_relay_battery_is_refused_then_accepted_after_auth(relay):
    with relay.smtp(source_address="127.0.0.2") as s:
        s.ehlo("relay-tester.test")
        assert s.mail("spammer@relay-tester.test")[0] == 250
        for addr in BATTERY:
            assert refused(s, addr) == (
                554, f"5.7.1 <{without_route(addr)}>: Relay access denied".encode()), addr
        # A local recipient is still fine from outside.
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
        s.rset()
        s.user, s.password = LOGIN, PASSWORD
        assert s.auth("PLAIN", s.auth_plain)[0] == 235
        assert s.mail("user@relay-tester.test")[0] == 250
        for addr in BATTERY:
            assert refused(s, addr) == (250, b"2.1.5 Ok"), addr
        s.rset()
    log = relay.log_text()
    assert re.search(
        r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 "
        r"<victim@far-away\.test>: Relay access denied; from=<spammer@relay-tester\.test> "
        r"to=<victim@far-away\.test> proto=ESMTP helo=<relay-tester\.test>", log), log[-3000:]


def test_own_address_literal_is_a_local_destination(relay):
    """user@[127.0.0.1] is local mail when 127.0.0.1 is ours (Postfix's resolve_local):
    no relay refusal, but an unknown local user is refused as such, AUTH or not."""
    unknown = b"5.1.1 <victim@[127.0.0.1]>: Recipient address rejected: " \
              b"User unknown in local recipient table"
    with relay.smtp(source_address="127.0.0.2") as s:
        s.ehlo("relay-tester.test")
        assert s.mail("spammer@relay-tester.test")[0] == 250
        assert refused(s, f"{USER1}@[127.0.0.1]") == (250, b"2.1.5 Ok")
        assert refused(s, "victim@[127.0.0.1]") == (550, unknown)


def test_mynetworks_client_may_relay(relay):
    with relay.smtp() as s:   # from 127.0.0.1, inside mynetworks
        s.ehlo("inside.test")
        s.mail("a@inside.test")
        assert s.rcpt("victim@far-away.test")[0] == 250
        s.rset()


def test_default_relay_restrictions_defer(make_instance):
    inst = make_instance(main_extra={"mynetworks": "127.0.0.1/32"})
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("c.test")
        s.mail("a@c.test")
        code, text = s.rcpt("victim@far-away.test")
        assert (code, text) == (454, b"4.7.1 <victim@far-away.test>: Relay access denied")


def test_access_tables_and_unlisted_recipient(make_instance, workdir):
    d = Path(tempfile.mkdtemp(prefix="access-", dir=workdir))
    (d / "client").write_text("127.0.0.3 REJECT go away\n127.0.0.4 OK\n")
    (d / "sender").write_text("spam.test 550 5.7.9 no spam here\nwarn.test WARN looked at\n")
    inst = make_instance(main_extra={
        "mynetworks": "127.0.0.1/32",
        "smtpd_client_restrictions": f"check_client_access texthash:{d}/client",
        "smtpd_sender_restrictions": f"check_sender_access texthash:{d}/sender",
        "smtpd_helo_restrictions": "reject_invalid_helo_hostname",
        "smtpd_recipient_restrictions": "reject_non_fqdn_recipient",
        "local_recipient_maps": "proxy:unix:passwd.byname",
    })
    with inst.smtp(source_address="127.0.0.3") as s:
        s.ehlo("ok.test")
        s.mail("a@ok.test")
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert (code, text) == (554, b"5.7.1 <unknown[127.0.0.3]>: Client host rejected: go away")
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("ok.test")
        s.mail("a@spam.test")
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert (code, text) == (550, b"5.7.9 <a@spam.test>: Sender address rejected: no spam here")
        s.rset()
        s.mail("a@warn.test")
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
        code, text = s.rcpt("nosuchuser-xyzzy@mx.rostfix.test")
        assert code == 550 and b"User unknown in local recipient table" in text
        code, text = s.rcpt("someone@localhost")
        assert code == 504 and b"need fully-qualified address" in text
        s.rset()
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("bad_name!")
        s.mail("a@ok.test")
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert (code, text) == (501, b"5.5.2 <bad_name!>: Helo command rejected: Invalid name")
    log = inst.log_text()
    assert "NOQUEUE: warn: RCPT from unknown[127.0.0.2]: looked at; from=<a@warn.test>" in log


@pytest.fixture
def dnsmasq():
    """127.0.0.2 listed in bl.test (with a TXT reason); nx.test does not exist;
    ok.test has an address."""
    with dns_server.dnsmasq([
            "--host-record=2.0.0.127.bl.test,127.0.0.2",
            "--txt-record=2.0.0.127.bl.test,listed for testing",
            "--host-record=ok.test,127.0.0.9",
            "--address=/nx.test/"]) as port:
        yield port


def test_dnsbl_and_unknown_sender_domain(make_instance, dnsmasq):
    inst = make_instance(main_extra={
        "mynetworks": "127.0.0.1/32",
        "rostfix_dns_servers": f"127.0.0.1:{dnsmasq}",
        "smtpd_client_restrictions": "reject_rbl_client bl.test",
        "smtpd_sender_restrictions": "reject_unknown_sender_domain",
    })
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("c.test")
        s.mail("a@ok.test")
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert code == 554
        assert text == (b"5.7.1 Service unavailable; Client host [127.0.0.2] blocked "
                        b"using bl.test; listed for testing")
    with inst.smtp(source_address="127.0.0.5") as s:
        s.ehlo("c.test")
        s.mail("a@ok.test")
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
        s.rset()
        s.mail("a@nx.test")
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert (code, text) == (450, b"4.1.8 <a@nx.test>: Sender address rejected: Domain not found")


def test_unknown_restriction_is_a_clear_error(make_instance):
    inst = make_instance(main_extra={"smtpd_client_restrictions": "permit_mynetwork"},
                         start=False)
    # `rostfix check` says so before anything starts, naming file, line and parameter.
    check = inst.cmd("rostfix", "check", check=False)
    main = inst.conf / "main.cf"
    line = next(n for n, text in enumerate(main.read_text().splitlines(), start=1)
                if text.startswith("smtpd_client_restrictions"))
    assert check.returncode != 0, check.stderr
    assert (f"{main}, line {line}: smtpd of service 127.0.0.1:{inst.port}/inet "
            f"({inst.conf / 'master.cf'}, line 2) cannot start: smtpd_client_restrictions: "
            'unknown smtpd restriction: "permit_mynetwork"') in check.stderr.decode(), \
        check.stderr
    inst.cmd("rostfix", "start")
    # master forks smtpd for the connection; smtpd refuses to start.
    wait_for(lambda: "starting" in inst.log_text() or inst.pids(), what="master")
    try:
        with socket_connect(inst.port) as sock:
            sock.settimeout(10)
            data = sock.recv(100)
    except OSError:
        data = b""
    assert not data.startswith(b"220")
    # Postfix's shape: `smtpd[PID]: fatal: ...`, not `error: fatal: ...`.
    wait_for(lambda: ']: fatal: smtpd_client_restrictions: unknown smtpd restriction: '
             '"permit_mynetwork"' in inst.log_text(), what="the fatal log line")
    assert "error: fatal:" not in inst.log_text()


def socket_connect(port):
    import socket
    return socket.create_connection(("127.0.0.1", port), timeout=10)
