"""Delivery status notifications end to end (issue 4, bounce): success notices for
NOTIFY=SUCCESS (delivered here, relayed elsewhere), RET=HDRS/FULL and ENVID in
non-delivery reports, a delay warning sent once, and a double bounce to the
postmaster address that is never bounced again. Every report is parsed with Python's
email package."""

import email
import email.policy

from harness import USER1, USER2, free_port, maildir_messages, wait_for, write_table
from smtpsink import Sink


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def report_blocks(msg):
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    status = list(msg.iter_parts())[1]
    assert status.get_content_type() == "message/delivery-status"
    return status.get_payload()


def tables(workdir, lines):
    return write_table(workdir, "transport", lines)


def test_success_notices_delivered_and_relayed(make_instance, workdir):
    port = free_port()
    t = tables(workdir, [("sink.test", f"smtp:[127.0.0.1]:{port}")])
    inst = make_instance(main_extra={"transport_maps": f"texthash:{t}"})
    sink = Sink(port)
    try:
        with inst.smtp() as s:
            s.ehlo()
            assert s.has_extn("dsn")
            s.sendmail(f"{USER1}@rostfix.test", [f"{USER2}@rostfix.test"],
                       b"Subject: hello\r\n\r\nbody\r\n",
                       rcpt_options=["NOTIFY=SUCCESS",
                                     f"ORCPT=rfc822;orig-{USER2}@rostfix.test"])
            s.sendmail(f"{USER1}@rostfix.test", ["far@sink.test"],
                       b"Subject: far\r\n\r\nbody\r\n", rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        msgs = wait_for(lambda: len(maildir_messages(USER1)) >= 2 and maildir_messages(USER1),
                        timeout=40, what="two success notices")
    finally:
        sink.stop()
    actions = {}
    for _, raw in msgs:
        m = parse(raw)
        assert m["Subject"] == "Successful Mail Delivery Report"
        blocks = report_blocks(m)
        per = blocks[1]
        assert per["Status"] == "2.0.0"
        actions[str(per["Final-Recipient"])] = (str(per["Action"]), per["Original-Recipient"])
    assert actions[f"rfc822; {USER2}@rostfix.test"] == (
        "delivered", f"rfc822; orig-{USER2}@rostfix.test")
    assert actions["rfc822; far@sink.test"][0] == "relayed"
    # The recipient itself got its mail.
    assert maildir_messages(USER2)


def test_ret_hdrs_and_full_and_envid(make_instance):
    # An empty local_recipient_maps: smtpd accepts unknown users, local bounces them.
    inst = make_instance(main_extra={"local_recipient_maps": ""})
    with inst.smtp() as s:
        s.sendmail(f"{USER1}@rostfix.test", ["nosuchuser@rostfix.test"],
                   b"Subject: headers only\r\n\r\nSECRET BODY\r\n",
                   mail_options=["RET=HDRS", "ENVID=env-123"])
        s.sendmail(f"{USER1}@rostfix.test", ["nosuchuser@rostfix.test"],
                   b"Subject: full\r\n\r\nWHOLE BODY\r\n")
        s.sendmail(f"{USER1}@rostfix.test", ["nosuchuser@rostfix.test"],
                   b"Subject: never\r\n\r\nx\r\n", rcpt_options=["NOTIFY=NEVER"])
    msgs = wait_for(lambda: len(maildir_messages(USER1)) >= 2 and maildir_messages(USER1),
                    timeout=40, what="two non-delivery reports")
    inst.wait_queue_empty()
    msgs = maildir_messages(USER1)
    assert len(msgs) == 2, "NOTIFY=NEVER gets no report"
    by_subject = {}
    for _, raw in msgs:
        m = parse(raw)
        assert m["Subject"] == "Undelivered Mail Returned to Sender"
        blocks = report_blocks(m)
        returned = list(m.iter_parts())[2]
        by_subject[returned.get_content_type()] = (blocks, raw)
    hdrs_blocks, hdrs_raw = by_subject["text/rfc822-headers"]
    assert hdrs_blocks[0]["Original-Envelope-Id"] == "env-123"
    assert hdrs_blocks[1]["Action"] == "failed"
    assert str(hdrs_blocks[1]["Status"]).startswith("5.")
    assert b"SECRET BODY" not in hdrs_raw
    _, full_raw = by_subject["message/rfc822"]
    assert b"WHOLE BODY" in full_raw


def test_delay_warning_is_sent_once(make_instance, workdir):
    t = tables(workdir, [("down.test", f"smtp:[127.0.0.1]:{free_port()}")])
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{t}",
        "delay_warning_time": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "queue_run_delay": "1s",
    })
    with inst.smtp() as s:
        s.sendmail(f"{USER1}@rostfix.test", ["x@down.test"], b"Subject: slow\r\n\r\nx\r\n")
    msgs = wait_for(lambda: maildir_messages(USER1), timeout=40, what="the delay warning")
    m = parse(msgs[0][1])
    assert m["Subject"] == "Delayed Mail (still being retried)"
    per = report_blocks(m)[1]
    assert per["Action"] == "delayed"
    assert str(per["Status"]).startswith("4.")
    # More attempts follow, but no second warning.
    wait_for(lambda: inst.log_text().count("to=<x@down.test>") >= 4, timeout=40,
             what="further attempts")
    assert len(maildir_messages(USER1)) == 1
    assert inst.log_text().count("sender delay notification") == 1


def test_double_bounce_goes_to_postmaster_once(make_instance):
    inst = make_instance(main_extra={
        "local_recipient_maps": "",
        "notify_classes": "resource, software, 2bounce",
        "2bounce_notice_recipient": f"{USER2}@rostfix.test",
    })
    with inst.smtp() as s:
        # A bounce (null sender) that cannot be delivered.
        s.sendmail("<>", ["nosuchuser@rostfix.test"], b"Subject: a bounce\r\n\r\nx\r\n")
    msgs = wait_for(lambda: maildir_messages(USER2), timeout=40, what="the double bounce")
    inst.wait_queue_empty()
    m = parse(msgs[0][1])
    assert m["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert report_blocks(m)[1]["Action"] == "failed"
    log = inst.log_text()
    assert log.count("postmaster non-delivery notification") == 1
    assert len(maildir_messages(USER2)) == 1
    assert not maildir_messages(USER1)
