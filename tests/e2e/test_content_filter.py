"""content_filter (issue 13): the classic after-queue amavisd-new wiring, with a real
amavisd-new. Mail received by smtpd (and by pickup) is marked for the filter, qmgr
sends it to `smtp-amavis:[127.0.0.1]:PORT`, amavis relays it back into the re-entry
smtpd on another port (`-o content_filter=` there), and it is delivered once."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from amavis import amavisd  # noqa: E402
from harness import USER1, USER2, free_port, maildir_messages, wait_for  # noqa: E402

# The re-entry service and the filter transport as amavisd-new's README.postfix and
# Postfix's FILTER_README write them, except smtpd_data_restrictions (the README's
# reject_unauth_pipelining belongs to another part of issue 13; test_corpus.py runs
# the published lines whole).
MASTER = """
smtp-amavis unix -      -       n       -       2       smtp
    -o smtp_data_done_timeout=1200
    -o smtp_send_xforward_command=yes
    -o disable_dns_lookups=yes
    -o max_use=20
127.0.0.1:{reentry} inet n  -       n       -       -       smtpd
    -o content_filter=
    -o local_recipient_maps=
    -o relay_recipient_maps=
    -o smtpd_restriction_classes=
    -o smtpd_delay_reject=no
    -o smtpd_client_restrictions=permit_mynetworks,reject
    -o smtpd_helo_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o smtpd_data_restrictions=
    -o smtpd_end_of_data_restrictions=
    -o mynetworks=127.0.0.0/8
    -o smtpd_error_sleep_time=0
    -o smtpd_soft_error_limit=1001
    -o smtpd_hard_error_limit=1000
    -o smtpd_client_connection_count_limit=0
    -o smtpd_client_connection_rate_limit=0
    -o receive_override_options=no_header_body_checks,no_unknown_recipient_checks,no_milters
"""

AMAVIS_RECEIVED = re.compile(rb"^Received: .*\n(?:[ \t].*\n)*?[ \t].*\(amavis, port \d+\)",
                             re.MULTILINE)


def amavis_passes(msg):
    """How many times the message went through amavis (its Received: lines)."""
    return len(AMAVIS_RECEIVED.findall(msg))


def test_amavis_after_queue_filter_delivers_once(make_instance, workdir):
    reentry = free_port()
    with amavisd(workdir, reentry) as am:
        inst = make_instance(
            main_extra={"content_filter": f"smtp-amavis:[127.0.0.1]:{am.port}"},
            master_extra=MASTER.format(reentry=reentry))
        # From outside mynetworks' /32 of the re-entry service is irrelevant here: the
        # first smtpd accepts local recipients from anyone.
        with inst.smtp(source_address="127.0.0.2") as s:
            s.ehlo("client.example")
            s.sendmail("alice@client.example", [f"{USER1}@rostfix.test"],
                       b"Subject: through amavis\r\n\r\nhello\r\n")
        wait_for(lambda: len(maildir_messages(USER1)) >= 1, timeout=60,
                 what="delivery after the filter")
        inst.wait_queue_empty()
        msgs = maildir_messages(USER1)
        assert len(msgs) == 1, [m for _, m in msgs]
        body = msgs[0][1]
        assert amavis_passes(body) == 1, body.decode(errors="replace")
        log = inst.log_text()
        # Both passes: first to amavis through the smtp-amavis transport, then local.
        to_amavis = re.findall(
            rf"(\w+): to=<{USER1}@rostfix.test>, relay=[^,]*\[127\.0\.0\.1\]:{am.port},"
            r".*status=sent", log)
        assert len(to_amavis) == 1, log
        to_local = re.findall(rf"(\w+): to=<{USER1}@rostfix.test>, relay=local,.*status=sent",
                              log)
        assert len(to_local) == 1, log
        assert to_local[0] != to_amavis[0]
        # XFORWARD: amavis names the original client, not the smtp client's 127.0.0.1.
        passed = [l for l in am.log_text().splitlines() if "Passed CLEAN {" in l]
        assert len(passed) == 1, am.log_text()[-3000:]
        assert "[127.0.0.2]" in passed[0], passed[0]
        assert f"Queue-ID: {to_amavis[0]}," in passed[0], passed[0]


def test_pickup_mail_goes_through_the_filter_too(make_instance, workdir):
    reentry = free_port()
    with amavisd(workdir, reentry) as am:
        inst = make_instance(
            main_extra={"content_filter": f"smtp-amavis:[127.0.0.1]:{am.port}"},
            master_extra=MASTER.format(reentry=reentry))
        proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-i",
                          f"{USER2}@rostfix.test"], check=False, user=USER1,
                         input=b"Subject: local submission\n\nhi\n")
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: len(maildir_messages(USER2)) >= 1, timeout=60,
                 what="delivery after the filter")
        inst.wait_queue_empty()
        msgs = maildir_messages(USER2)
        assert len(msgs) == 1
        assert amavis_passes(msgs[0][1]) == 1, msgs[0][1].decode(errors="replace")


def test_without_the_filter_service_mail_waits_instead_of_skipping_it(make_instance):
    # content_filter names a transport that master.cf lacks: Postfix defers ("mail
    # transport unavailable"); delivering unfiltered would bypass the scanner.
    inst = make_instance(main_extra={"content_filter": "smtp-amavis:[127.0.0.1]:9"})
    with inst.smtp() as s:
        s.sendmail("alice@client.example", [f"{USER1}@rostfix.test"],
                   b"Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: "status=deferred" in inst.log_text(), timeout=30,
             what="the deferral")
    assert maildir_messages(USER1) == []
    assert inst.queue_ids("deferred") or inst.queue_ids("active")
