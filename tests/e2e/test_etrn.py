"""ETRN end to end (issue 13): mail deferred to a dead destination is delivered as
soon as a client sends ETRN for its domain (qmgr's site flush), with Postfix's
replies; smtpd_etrn_restrictions (check_etrn_access) and fast_flush_domains
(default $relay_domains) refuse the rest. The destination is a Python sink reached
through transport_maps, so nothing leaves loopback."""

import os
import tempfile
from pathlib import Path

from harness import free_port, wait_for
from smtpsink import Sink


def test_etrn_flushes_deferred_mail_for_its_domain(make_instance, workdir):
    port = free_port()
    tables = Path(tempfile.mkdtemp(prefix="etrn-", dir=workdir))
    os.chmod(tables, 0o755)
    for name, text in (("transport", f"dead.test smtp:[127.0.0.1]:{port}\n"),
                       ("etrn_access", "banned.test REJECT\n")):
        (tables / name).write_text(text)
        os.chmod(tables / name, 0o644)
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{tables}/transport",
        "relay_domains": "dead.test banned.test",
        "smtpd_etrn_restrictions": f"check_etrn_access texthash:{tables}/etrn_access, permit",
        # Long enough that only the flush can bring the mail out before the test ends.
        "minimal_backoff_time": "600s",
        "maximal_backoff_time": "1200s",
    })
    with inst.smtp() as s:
        s.sendmail("sender@src.test", ["r@dead.test"], b"Subject: etrn\r\n\r\nx\r\n")
    wait_for(lambda: len(inst.queue_ids("deferred")) == 1, timeout=30,
             what="the mail deferred")
    sink = Sink(port)
    try:
        with inst.smtp() as s:
            code, text = s.ehlo("client.test")
            assert b"ETRN" in text.split(b"\n")
            assert s.docmd("ETRN other.test") == (459, b"<other.test>: service unavailable")
            assert s.docmd("ETRN banned.test") == (
                554, b"5.7.1 <banned.test>: Etrn command rejected: Access denied")
            assert s.docmd("ETRN bad..name") == (501, b"Error: invalid parameter syntax")
            assert s.docmd("ETRN @dead.test") == (250, b"Queuing started")
        wait_for(lambda: len(sink.messages) == 1, timeout=30, what="delivery after ETRN")
        wait_for(lambda: not inst.queue_ids("deferred"), what="deferred/ to empty")
    finally:
        sink.stop()
    log = inst.log_text()
    assert "warning: reject: ETRN other.test... from" in log
    assert "NOQUEUE: reject: ETRN from localhost[127.0.0.1]: 554 5.7.1 <banned.test>" in log \
        or "NOQUEUE: reject: ETRN from unknown[127.0.0.1]: 554 5.7.1 <banned.test>" in log, log
