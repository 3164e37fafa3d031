"""The client's name and the DNS-based restrictions, against a dnsmasq of the test's own
(dns_server.py). Clients connect from 127.0.0.X source addresses:

- 127.0.0.11 good.dnstest.test: PTR and A agree, so it is `good.dnstest.test[127.0.0.11]`
  in the log and in Received;
- 127.0.0.12: PTR forged.dnstest.test, whose A is 127.0.0.99 (FCrDNS mismatch):
  `unknown[127.0.0.12]`, refused by reject_unknown_client_hostname with Postfix's text,
  accepted by reject_unknown_reverse_client_hostname;
- 127.0.0.13: NXDOMAIN for its PTR (permanent: unknown_client_reject_code);
- 127.0.0.14: no answer for its PTR (the server refuses: temporary, 450);
- 127.0.0.15 listed.dnstest.test and 127.0.0.16 other.dnstest.test: confirmed names,
  for the RHSBL and name-keyed access tests.
"""

import tempfile
from pathlib import Path

import pytest

import dns_server
from harness import USER1, maildir_messages, wait_for

RCPT = f"{USER1}@mx.rostfix.test"


@pytest.fixture(scope="module")
def dns():
    with dns_server.dnsmasq([
            "--host-record=good.dnstest.test,127.0.0.11",
            "--ptr-record=12.0.0.127.in-addr.arpa,forged.dnstest.test",
            "--host-record=forged.dnstest.test,127.0.0.99",
            "--address=/13.0.0.127.in-addr.arpa/",
            "--host-record=listed.dnstest.test,127.0.0.15",
            "--host-record=other.dnstest.test,127.0.0.16",
            # RHSBL: listed.dnstest.test answers inside the pattern, other outside it.
            "--host-record=listed.dnstest.test.rhs.test,127.0.0.4",
            "--host-record=other.dnstest.test.rhs.test,127.0.0.10",
            # A sender domain whose MX host has an address the mx_access table refuses.
            "--mx-host=badmx.test,mx.badmx.test,10",
            "--host-record=mx.badmx.test,127.0.0.66",
            "--host-record=goodmx.test,127.0.0.67",
            # RFC 7505 null MX: the domain says it takes no mail.
            "--mx-host=nullmx.test,.,0",
            "--address=/nx.test/"]) as port:
        yield port


def base(dns, **extra):
    settings = {
        "mynetworks": "127.0.0.1/32",
        "rostfix_dns_servers": f"127.0.0.1:{dns}",
    }
    settings.update(extra)
    return settings


def test_confirmed_name_is_logged_and_in_received(make_instance, dns):
    inst = make_instance(main_extra=base(
        dns, smtpd_client_restrictions="reject_unknown_client_hostname"))
    with inst.smtp(source_address="127.0.0.11") as s:
        s.ehlo("client.helo.test")
        s.sendmail("a@good.dnstest.test", [RCPT],
                   b"From: a@good.dnstest.test\r\nSubject: named\r\n\r\nhello\r\n")
    wait_for(lambda: maildir_messages(USER1), what="delivery")
    data = maildir_messages(USER1)[0][1].decode()
    assert "Received: from client.helo.test (good.dnstest.test [127.0.0.11])" in data, data
    log = inst.log_text()
    assert "connect from good.dnstest.test[127.0.0.11]" in log
    assert ": client=good.dnstest.test[127.0.0.11]" in log


def test_fcrdns_mismatch_and_missing_ptr(make_instance, dns):
    inst = make_instance(main_extra=base(
        dns, smtpd_client_restrictions="reject_unknown_client_hostname",
        unknown_client_reject_code="550"))
    with inst.smtp(source_address="127.0.0.12") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@good.dnstest.test")
        assert s.rcpt(RCPT) == (
            550, b"5.7.25 Client host rejected: cannot find your hostname, [127.0.0.12]")
    with inst.smtp(source_address="127.0.0.13") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@good.dnstest.test")
        assert s.rcpt(RCPT) == (
            550, b"5.7.25 Client host rejected: cannot find your hostname, [127.0.0.13]")
    # The PTR query gets no answer (dnsmasq refuses it): temporary, 450 whatever the
    # configured code.
    with inst.smtp(source_address="127.0.0.14") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@good.dnstest.test")
        assert s.rcpt(RCPT) == (
            450, b"4.7.25 Client host rejected: cannot find your hostname, [127.0.0.14]")
    log = inst.log_text()
    assert "warning: hostname forged.dnstest.test does not resolve to address 127.0.0.12" \
        in log
    assert "connect from unknown[127.0.0.12]" in log
    assert "NOQUEUE: reject: RCPT from unknown[127.0.0.12]: 550 5.7.25 Client host " \
        "rejected: cannot find your hostname, [127.0.0.12];" in log

    rev = make_instance(main_extra=base(
        dns, smtpd_client_restrictions="reject_unknown_reverse_client_hostname",
        unknown_client_reject_code="550"))
    with rev.smtp(source_address="127.0.0.12") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@good.dnstest.test")
        assert s.rcpt(RCPT)[0] == 250
    with rev.smtp(source_address="127.0.0.13") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@good.dnstest.test")
        assert s.rcpt(RCPT) == (
            550, b"5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.13]")


def test_peername_lookup_off_leaves_clients_unknown(make_instance, dns):
    inst = make_instance(main_extra=base(dns, smtpd_peername_lookup="no"))
    with inst.smtp(source_address="127.0.0.11") as s:
        assert s.noop()[0] == 250
    wait_for(lambda: "disconnect from unknown[127.0.0.11]" in inst.log_text(),
             what="the disconnect line")
    assert "good.dnstest.test[127.0.0.11]" not in inst.log_text()


def test_name_keyed_access_mx_access_rhsbl_and_unknown_helo(make_instance, dns, workdir):
    d = Path(tempfile.mkdtemp(prefix="dnsacl-", dir=workdir))
    (d / "client").write_text("blocked.dnstest.test REJECT named and refused\n"
                              "other.dnstest.test REJECT refused by name\n")
    (d / "mx").write_text("127.0.0.66 REJECT bad mail server\n")
    inst = make_instance(main_extra=base(
        dns,
        smtpd_client_restrictions=(f"check_client_access texthash:{d}/client, "
                                   "reject_rhsbl_client rhs.test=127.0.0.[2..5]"),
        smtpd_helo_restrictions="reject_unknown_helo_hostname",
        smtpd_sender_restrictions=(f"check_sender_mx_access texthash:{d}/mx, "
                                   "reject_unknown_sender_domain"),
        unknown_hostname_reject_code="550",
        unknown_address_reject_code="550"))
    # rhs.test lists listed.dnstest.test with 127.0.0.4, inside 127.0.0.[2..5].
    with inst.smtp(source_address="127.0.0.15") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@goodmx.test")
        assert s.rcpt(RCPT) == (
            554, b"5.7.1 Service unavailable; Client host [listed.dnstest.test] blocked "
                 b"using rhs.test")
    # other.dnstest.test is refused by its name in the access table (the address is
    # not in it), before its RHSBL answer (127.0.0.10, outside the pattern) matters.
    with inst.smtp(source_address="127.0.0.16") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@goodmx.test")
        assert s.rcpt(RCPT) == (
            554, b"5.7.1 <other.dnstest.test[127.0.0.16]>: Client host rejected: "
                 b"refused by name")
    with inst.smtp(source_address="127.0.0.11") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@badmx.test")
        assert s.rcpt(RCPT) == (554, b"5.7.1 <a@badmx.test>: Sender address rejected: "
                                     b"bad mail server")
        s.rset()
        s.mail("a@nx.test")
        assert s.rcpt(RCPT) == (550, b"5.1.8 <a@nx.test>: Sender address rejected: "
                                     b"Domain not found")
        s.rset()
        s.mail("a@nullmx.test")
        assert s.rcpt(RCPT) == (550, b"5.7.27 <a@nullmx.test>: Sender address rejected: "
                                     b"Domain nullmx.test does not accept mail (nullMX)")
        s.rset()
        s.mail("a@goodmx.test")
        assert s.rcpt(RCPT)[0] == 250
    with inst.smtp(source_address="127.0.0.11") as s:
        s.ehlo("nohost.nx.test")
        s.mail("a@goodmx.test")
        assert s.rcpt(RCPT) == (550, b"5.7.1 <nohost.nx.test>: Helo command rejected: "
                                     b"Host not found")


def test_unverified_sender_without_verify_service_defers(make_instance, dns):
    """No verify entry in master.cf: reject_unverified_sender cannot get an answer, so
    (as Postfix) the client is told to retry, with a warning, rather than let through
    or refused (test_verify.py runs the service)."""
    inst = make_instance(main_extra=base(
        dns, smtpd_sender_restrictions="reject_unverified_sender"))
    with inst.smtp(source_address="127.0.0.11") as s:
        s.ehlo("good.dnstest.test")
        s.mail("a@goodmx.test")
        code, text = s.rcpt(RCPT)
        assert code == 450
        assert b"<a@goodmx.test>: Sender address rejected: address verification problem" in text
    wait_for(lambda: "warning: verify service failure" in inst.log_text(), what="the warning")


def test_dnsbl_patterns_allow_list_and_reply_maps(make_instance, workdir):
    """127.0.0.21 is on bl.test with 127.0.0.3 (inside [2..5]: refused with the
    rbl_reply_maps text); 127.0.0.22 with 127.0.0.10 (outside: accepted); 127.0.0.23 is on
    bl.test too but also on the allow list wl.test, which comes first, yet does not let
    it relay (Postfix's permit_dnswl_client safety)."""
    with dns_server.dnsmasq([
            "--host-record=21.0.0.127.bl.test,127.0.0.3",
            "--txt-record=21.0.0.127.bl.test,spam source",
            "--host-record=22.0.0.127.bl.test,127.0.0.10",
            "--host-record=23.0.0.127.bl.test,127.0.0.2",
            "--host-record=23.0.0.127.wl.test,127.0.0.2"]) as port:
        d = Path(tempfile.mkdtemp(prefix="rblreply-", dir=workdir))
        (d / "rbl_reply").write_text(
            "bl.test 521 5.7.1 $client_address is on $rbl_domain: $rbl_reason\n")
        inst = make_instance(main_extra=base(
            port,
            # The allow list sits in the relay list: listed clients skip the
            # DNSBL below, but must never be let relay by it.
            smtpd_relay_restrictions=("permit_dnswl_client wl.test, "
                                      "reject_rbl_client bl.test=127.0.0.[2..5], "
                                      "reject_unauth_destination"),
            rbl_reply_maps=f"texthash:{d}/rbl_reply"))
        with inst.smtp(source_address="127.0.0.21") as s:
            s.ehlo("good.dnstest.test")
            s.mail("a@goodmx.test")
            assert s.rcpt(RCPT) == (521, b"5.7.1 127.0.0.21 is on bl.test: spam source")
        for addr in ["127.0.0.22", "127.0.0.23"]:
            with inst.smtp(source_address=addr) as s:
                s.ehlo("good.dnstest.test")
                s.mail("a@goodmx.test")
                assert s.rcpt(RCPT)[0] == 250, addr
        with inst.smtp(source_address="127.0.0.23") as s:
            s.ehlo("good.dnstest.test")
            s.mail("a@goodmx.test")
            # Not permitted by the allow list, so the block list refuses it.
            assert s.rcpt("victim@far-away.test") == (521, b"5.7.1 127.0.0.23 is on bl.test:")
