"""VERP (issue 19, bounce classification: "VERP so bounces identify the recipient"):
Postfix's XVERP MAIL parameter for smtpd_authorized_verp_clients and sendmail's -XV
give each recipient user@domain its own envelope sender owner+user=domain@origin, so
a bounce names the subscriber it is about. Checked against a sink that records every
MAIL FROM, a local Maildir's Return-Path, the non-delivery notice (which goes to the
unchanged sender), and the refusals Postfix gives (555 for an unauthorized client,
501 for delimiters outside verp_delimiter_filter, 503 for the null sender)."""

import smtplib

from harness import USER1, free_port, maildir_messages, wait_for, write_table
from smtpsink import Sink

OWNER = f"{USER1}@rostfix.test"


def transport(workdir, port):
    return write_table(workdir, "transport", [("sink.test", f"smtp:[127.0.0.1]:{port}")])


def senders_by_rcpt(sink):
    with sink.lock:
        return {r: s for s, rcpts, _ in sink.messages for r in rcpts}


def test_xverp_personalises_each_recipient_and_bounces_reach_the_owner(make_instance, workdir):
    port = free_port()
    inst = make_instance(main_extra={"transport_maps": f"texthash:{transport(workdir, port)}"})
    sink = Sink(port, rcpt_replies={"gone@sink.test": "550 5.1.1 <gone@sink.test>: no such user"})
    try:
        before = len(maildir_messages(USER1))
        with inst.smtp() as s:
            s.ehlo()
            assert s.has_extn("xverp"), s.esmtp_features
            s.sendmail("owner-list@lists.rostfix.test",
                       ["ann@sink.test", "bob@sink.test", OWNER],
                       b"Subject: issue 1\r\n\r\nnews\r\n", mail_options=["XVERP"])
            s.sendmail("owner-list@lists.rostfix.test", ["cy@sink.test"],
                       b"Subject: issue 2\r\n\r\nnews\r\n", mail_options=["XVERP=-="])
            s.sendmail(OWNER, ["gone@sink.test"],
                       b"Subject: issue 3\r\n\r\nnews\r\n", mail_options=["XVERP"])
        got = wait_for(lambda: len(senders_by_rcpt(sink)) >= 3 and senders_by_rcpt(sink),
                       timeout=40, what="the relayed copies")
        # One transaction per recipient, each with its own sender.
        assert got["ann@sink.test"] == "owner-list+ann=sink.test@lists.rostfix.test", got
        assert got["bob@sink.test"] == "owner-list+bob=sink.test@lists.rostfix.test", got
        assert got["cy@sink.test"] == "owner-list-cy=sink.test@lists.rostfix.test", got
        with sink.lock:
            assert all(len(rcpts) == 1 for _, rcpts, _ in sink.messages), sink.messages
        # The refused recipient was offered with its personalised sender too; its
        # message is a separate queue entry, so it may reach the sink after the others.
        gone_sender = f"{USER1}+gone=sink.test@rostfix.test"

        def tried():
            with sink.lock:
                return list(sink.senders)
        wait_for(lambda: gone_sender in tried(), timeout=40, what="the refused recipient's MAIL")
        msgs = wait_for(lambda: len(maildir_messages(USER1)) >= before + 2
                        and maildir_messages(USER1)[before:],
                        timeout=40, what="the local copy and the bounce")
    finally:
        sink.stop()
    heads = [raw.split(b"\n\n", 1)[0].decode() for _, raw in msgs]
    local = [h for h in heads if "Subject: issue 1" in h]
    assert local and local[0].startswith(
        f"Return-Path: <owner-list+{USER1}=rostfix.test@lists.rostfix.test>\n"), heads
    # The notice goes to the sender as queued, not to the personalised one.
    bounce = [h for h in heads if "Undelivered Mail Returned to Sender" in h]
    assert bounce and f"To: {OWNER}" in bounce[0], heads
    inst.wait_queue_empty()


def test_xverp_refusals_as_postfix(make_instance):
    inst = make_instance()
    with inst.smtp() as s:
        s.ehlo()
        assert s.mail("owner@rostfix.test", ["XVERP=#="]) == (
            501, b"5.5.4 Error: XVERP needs two characters from -=+")
        assert s.mail("", ["XVERP"]) == (503, b"5.5.4 Error: XVERP requires non-null sender")
        assert s.mail("owner@rostfix.test", ["XVERP=+"])[0] == 501
        # Nothing above opened a transaction.
        assert s.mail("owner@rostfix.test", ["XVERP"])[0] == 250
        s.rset()
    inst.stop()
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + "smtpd_authorized_verp_clients = 192.0.2.1\n")
    inst.start()
    with inst.smtp() as s:
        s.ehlo()
        assert not s.has_extn("xverp"), s.esmtp_features
        assert s.mail("owner@rostfix.test", ["XVERP"]) == (
            555, b"5.5.4 Unsupported option: XVERP")


def test_sendmail_xv(make_instance, workdir):
    port = free_port()
    inst = make_instance(main_extra={"transport_maps": f"texthash:{transport(workdir, port)}"})
    sink = Sink(port)
    sendmail = str(inst.bindir / "sendmail")
    try:
        inst._run([sendmail, "-C", str(inst.conf), "-XV", "-f", "news@rostfix.test",
                   "dee@sink.test", "eve@sink.test"], input=b"Subject: x\n\nbody\n")
        inst._run([sendmail, "-C", str(inst.conf), "-XV-=", "-f", "news@rostfix.test",
                   "fay@sink.test"], input=b"Subject: y\n\nbody\n")
        got = wait_for(lambda: len(senders_by_rcpt(sink)) >= 3 and senders_by_rcpt(sink),
                       timeout=40, what="the sendmail -XV copies")
    finally:
        sink.stop()
    assert got == {
        "dee@sink.test": "news+dee=sink.test@rostfix.test",
        "eve@sink.test": "news+eve=sink.test@rostfix.test",
        "fay@sink.test": "news-fay=sink.test@rostfix.test",
    }, got
    bad = inst._run([sendmail, "-C", str(inst.conf), "-XV#=", "-f", "news@rostfix.test",
                     "x@sink.test"], check=False, input=b"\n")
    assert bad.returncode == 64 and b"-XV requires two characters from -=+" in bad.stderr, bad
    null = inst._run([sendmail, "-C", str(inst.conf), "-XV", "-f", "", "x@sink.test"],
                     check=False, input=b"\n")
    assert null.returncode == 64 and b"non-null sender" in null.stderr, null
    inst.wait_queue_empty()
