"""Address resolution end to end (issue 4 trivial-rewrite, issue 5 virtual aliases):
transport_maps `[host]:port` routing, relayhost for everything else, the error: and
discard: transports, and virtual alias domains rewriting to local and remote
addresses, with an unknown alias bounced as "User unknown in virtual alias table"."""

import email
import email.policy
import smtplib

import pytest

from harness import USER1, USER2, free_port, maildir_messages, wait_for, write_table
from smtpsink import Sink


def table(workdir, name, lines):
    return write_table(workdir, name, lines)


def test_routing_error_and_discard(make_instance, workdir):
    mapped, relay = free_port(), free_port()
    t = table(workdir, "transport", [
        ("mapped.test", f"smtp:[127.0.0.1]:{mapped}"),
        ("gone.test", "error:5.1.2 this domain is gone"),
        ("trash.test", "discard:silently dropped"),
        (f"{USER1}@rostfix.test", ":"),
    ])
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{t}",
        "relayhost": f"[127.0.0.1]:{relay}",
    })
    s_mapped, s_relay = Sink(mapped), Sink(relay)
    try:
        with inst.smtp() as s:
            s.sendmail(f"{USER1}@rostfix.test",
                       ["a@mapped.test", "b@elsewhere.test", "c@gone.test", "d@trash.test"],
                       b"Subject: routes\r\n\r\nx\r\n")
        wait_for(lambda: s_mapped.messages and s_relay.messages, timeout=30,
                 what="both sinks to receive")
        assert s_mapped.messages[0][1] == ["a@mapped.test"]
        assert s_relay.messages[0][1] == ["b@elsewhere.test"]
        msgs = wait_for(lambda: maildir_messages(USER1), timeout=30, what="the bounce")
        inst.wait_queue_empty()
    finally:
        s_mapped.stop()
        s_relay.stop()
    m = email.message_from_bytes(msgs[0][1], policy=email.policy.default)
    per = list(m.iter_parts())[1].get_payload()
    failed = [b for b in per[1:]]
    assert [str(b["Final-Recipient"]) for b in failed] == ["rfc822; c@gone.test"]
    assert failed[0]["Status"] == "5.1.2"
    log = inst.log_text()
    assert "to=<d@trash.test>, relay=none" in log
    assert "dsn=2.0.0, status=sent (silently dropped)" in log
    assert "dsn=5.1.2, status=bounced (this domain is gone)" in log


def test_virtual_alias_domain(make_instance, workdir):
    remote = free_port()
    valias = table(workdir, "virtual", [
        ("info@valias.test", f"{USER2}@rostfix.test, someone@remote.test"),
        ("self@valias.test", "self@valias.test, " + f"{USER2}@rostfix.test"),
    ])
    transport = table(workdir, "transport", [("remote.test", f"smtp:[127.0.0.1]:{remote}")])
    inst = make_instance(main_extra={
        "virtual_alias_domains": "valias.test",
        "virtual_alias_maps": f"texthash:{valias}",
        "transport_maps": f"texthash:{transport}",
    })
    sink = Sink(remote)
    try:
        with inst.smtp() as s:
            s.sendmail(f"{USER1}@rostfix.test", ["info@valias.test"],
                       b"Subject: to the alias\r\n\r\nx\r\n")
            # smtpd refuses an address of the alias domain that the table lacks, as
            # Postfix's reject_unlisted_recipient does (no accept-then-bounce)...
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                s.sendmail(f"{USER1}@rostfix.test", ["nobody@valias.test"],
                           b"Subject: unknown\r\n\r\nx\r\n")
            assert refused.value.recipients["nobody@valias.test"] == (
                550, b"5.1.1 <nobody@valias.test>: Recipient address rejected: "
                     b"User unknown in virtual alias table")
        # ...while locally submitted mail to it is bounced by qmgr.
        inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-f",
                   f"{USER1}@rostfix.test", "nobody@valias.test"],
                  input=b"Subject: unknown\n\nx\n")
        wait_for(lambda: sink.messages, timeout=30, what="the remote alias target")
        assert sink.messages[0][1] == ["someone@remote.test"]
        wait_for(lambda: maildir_messages(USER2), timeout=30, what="the local alias target")
        bounce = wait_for(lambda: maildir_messages(USER1), timeout=30, what="the bounce")
        inst.wait_queue_empty()
    finally:
        sink.stop()
    log = inst.log_text()
    assert f"to=<{USER2}@rostfix.test>, orig_to=<info@valias.test>" in log, log
    m = email.message_from_bytes(bounce[0][1], policy=email.policy.default)
    per = list(m.iter_parts())[1].get_payload()[1]
    assert per["Final-Recipient"] == "rfc822; nobody@valias.test"
    assert per["Status"] == "5.1.1"
    assert "User unknown in virtual alias table" in per["Diagnostic-Code"]
