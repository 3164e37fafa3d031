"""non_smtpd_milters (issue 15): mail submitted with the sendmail command goes through
pickup to the milters in non_smtpd_milters, with the SMTP session Postfix's cleanup
fakes for it (CONNECT from localhost 127.0.0.1, EHLO localhost, MAIL FROM the sender,
RCPT, DATA, then the message).

- OpenDKIM (Debian's opendkim) signs it, because the faked client is one of its
  InternalHosts, and the signature verifies with dkimpy against the key in the test
  dnsmasq. Before this work non_smtpd_milters was reported as without effect and
  locally submitted mail left unsigned.
- receive_override_options = no_milters on pickup (a content filter's re-injection
  path) turns them off: the same mail leaves unsigned.
- A libmilter peer (python3-milter) gets the macros and applies its edits; its
  REJECT returns the message to the sender (there is no client to refuse), its
  QUARANTINE puts it on hold."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dns_server import dnsmasq  # noqa: E402
from harness import USER1, USER2, maildir_messages, wait_for  # noqa: E402
from test_milter import RCPT, _delivered, assert_opendkim_signed, opendkim  # noqa: E402
from test_milter import pymilter  # noqa: E402,F401  (a fixture)


def _sendmail(inst, text):
    proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-t"],
                     check=False, user=USER1, input=text.encode())
    assert proc.returncode == 0, proc.stderr


def test_opendkim_signs_local_submissions(make_instance, workdir):
    with opendkim(workdir) as (milter_port, records), dnsmasq(records) as dns_port:
        inst = make_instance(main_extra={
            "non_smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "milter_default_action": "tempfail",
        })
        body = "Signed by OpenDKIM through non_smtpd_milters.\n" * 3
        _sendmail(inst, f"From: alice@rostfix.test\nTo: {RCPT}\nSubject: local-signed\n\n{body}")
        data = wait_for(lambda: _delivered("local-signed"), timeout=30,
                        what="locally submitted mail delivered")
        assert_opendkim_signed(data, dns_port)

        # receive_override_options = no_milters (as on a content filter's
        # re-injection path): pickup calls no milter, the mail leaves unsigned.
        inst.stop()
        inst = make_instance(main_extra={
            "non_smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "receive_override_options": "no_milters",
        })
        _sendmail(inst, f"From: alice@rostfix.test\nTo: {RCPT}\nSubject: local-unsigned\n\nx\n")
        data = wait_for(lambda: _delivered("local-unsigned"), timeout=30,
                        what="mail with no_milters delivered")
        assert b"DKIM-Signature:" not in data, data[:2000]


def test_libmilter_sees_the_faked_session_and_edits(make_instance, pymilter):  # noqa: F811
    inst = make_instance(main_extra={"non_smtpd_milters": f"inet:127.0.0.1:{pymilter}"})
    _sendmail(inst, f"From: {USER1}@rostfix.test\nTo: {RCPT}\nSubject: edit-me\n"
                    "X-Change: first\nX-Change: second\nX-Delete: gone\n\noriginal body\n")
    data = wait_for(lambda: _delivered("edit-me", USER2), timeout=30,
                    what="edited local mail delivered")
    assert _delivered("edit-me") is None
    head, _, body = data.partition(b"\n\n")
    assert body == b"replaced by the milter\n", data
    assert b"Return-Path: <changed@rostfix.test>" in head, head
    assert b"X-Change: changed by milter\n" in head and b"X-Delete" not in head, head
    macros = next(l for l in head.split(b"\n") if l.startswith(b"X-Milter-Macros:"))
    log = inst.log_text()
    qid = re.search(r"pickup\[\d+\]: (\w+): uid=", log).group(1)
    # {mail_addr} is the bare sender, as Postfix's cleanup sends it.
    assert macros == (f"X-Milter-Macros: i={qid} j=mx.rostfix.test "
                      f"mail_addr={USER1}@mx.rostfix.test daemon_name=mx.rostfix.test").encode(), \
        (macros, qid, log[-3000:])

    # REJECT: no client to tell, so the sender gets the message back.
    _sendmail(inst, f"From: {USER1}@rostfix.test\nTo: {RCPT}\nSubject: reject-me\n\nx\n")
    wait_for(lambda: "milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 "
             "Command rejected;" in inst.log_text(), what="milter-reject logged")

    def bounced():
        for _, d in maildir_messages(USER1):
            if b"Undelivered" in d or b"Delivery Status Notification" in d \
                    or b"Mail Delivery System" in d:
                return d
        return None
    notice = wait_for(bounced, timeout=30, what="non-delivery notice to the sender")
    assert b"Subject: reject-me" in notice, notice[:3000]
    # QUARANTINE: held.
    _sendmail(inst, f"From: {USER1}@rostfix.test\nTo: {RCPT}\nSubject: quarantine-me\n\nx\n")
    wait_for(lambda: len(inst.queue_ids("hold")) == 1, timeout=30, what="quarantined on hold")
    assert "milter-hold: END-OF-MESSAGE from localhost[127.0.0.1]" in inst.log_text()
