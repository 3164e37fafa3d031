"""Address verification end to end (issue 14): reject_unverified_recipient asks the
verify service, which sends a probe through qmgr to the smtp client; the probe goes
as far as RCPT at the next hop (an smtp sink that refuses one address) and never
sends DATA; the answer is cached in address_verify_map, so the second RCPT gets the
cached 550 and a deliverable address is accepted and delivered; the cache survives a
restart of the mail system."""


from harness import USER1, free_port, wait_for, write_table
from smtpsink import Sink

MASTER_VERIFY = "verify    unix  -       -       n       -       1       verify\n"


def table(workdir, name, lines):
    return write_table(workdir, name, lines)


def rcpt_reply(inst, rcpt):
    """The (code, text) of RCPT TO:<rcpt> in a fresh session."""
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail(f"{USER1}@rostfix.test")
        code, text = s.rcpt(rcpt)
        return code, text.decode()


def verifying(make_instance, workdir, port, main_extra=None, master_extra=MASTER_VERIFY):
    """An instance whose recipients in verify.test are verified against 127.0.0.1:port."""
    transport = table(workdir, "transport", [("verify.test", f"smtp:[127.0.0.1]:{port}")])
    return make_instance(
        main_extra={
            "relay_domains": "verify.test",
            "transport_maps": f"texthash:{transport}",
            "smtpd_recipient_restrictions": "reject_unverified_recipient",
            "unverified_recipient_reject_code": "550",
            # One query per RCPT: the first answer is "in progress" at once.
            "address_verify_poll_count": "1",
            **(main_extra or {}),
        },
        master_extra=master_extra,
    )


def test_probe_cache_and_delivery(make_instance, workdir):
    port = free_port()
    inst = verifying(make_instance, workdir, port)
    sink = Sink(port, rcpt_replies={"bad@verify.test": "550 5.1.1 <bad@verify.test>: no such user"})
    try:
        # First RCPT: nothing known, a probe is started, the client is told to retry.
        code, text = rcpt_reply(inst, "bad@verify.test")
        assert code == 450, text
        assert "<bad@verify.test>: Recipient address rejected: unverified address: " \
            "Address verification in progress" in text
        # The probe's answer arrives: the cached 550 with the next hop's reason.
        def rejected():
            c, t = rcpt_reply(inst, "bad@verify.test")
            return (c, t) if c == 550 else None
        code, text = wait_for(rejected, timeout=30, interval=0.5, what="the cached 550")
        assert text.startswith("5.1.1 <bad@verify.test>: Recipient address rejected: "
                               "undeliverable address: "), text
        assert "no such user" in text

        # A good address: 450 first, then accepted, and real mail to it is delivered.
        assert rcpt_reply(inst, "good@verify.test")[0] == 450
        wait_for(lambda: rcpt_reply(inst, "good@verify.test")[0] == 250, timeout=30,
                 interval=0.5, what="good@verify.test to verify")
        with inst.smtp() as s:
            s.sendmail(f"{USER1}@rostfix.test", ["good@verify.test"],
                       b"Subject: verified\r\n\r\nhello\r\n")
        wait_for(lambda: sink.for_rcpt("good@verify.test"), timeout=30,
                 what="the real message at the sink")
        inst.wait_queue_empty()

        # The probes reached MAIL/RCPT (sender double-bounce@$myorigin) but no DATA:
        # the only message the sink holds is the real one.
        probe_sender = "double-bounce@mx.rostfix.test"
        assert sink.senders.count(probe_sender) == 2, sink.senders
        assert [m[0] for m in sink.messages] == [f"{USER1}@rostfix.test"]
        log = inst.log_text()
        assert "to=<bad@verify.test>" in log and "status=undeliverable" in log
        assert "to=<good@verify.test>" in log and "status=deliverable" in log
        # A probe is never bounced to anyone.
        assert "sender non-delivery notification" not in log

        # The cache is a file: after a restart the answer is there at once, no new probe.
        inst.stop()
        inst.start()
        code, text = rcpt_reply(inst, "bad@verify.test")
        assert code == 550, text
        assert rcpt_reply(inst, "good@verify.test")[0] == 250
        assert sink.senders.count(probe_sender) == 2, sink.senders
        cache = (inst.base / "data" / "verify_cache").read_text()
        assert "bad@verify.test\tundeliverable\t" in cache
    finally:
        sink.stop()


def test_unverified_sender_with_an_unreachable_next_hop(make_instance, workdir):
    """reject_unverified_sender: the sender's domain goes to a port nobody listens on,
    so the probe is deferred (reported once, never retried or bounced) and the client
    is told to retry with the connection error as the reason."""
    closed = free_port()
    transport = table(workdir, "transport", [("down.test", f"smtp:[127.0.0.1]:{closed}")])
    inst = make_instance(
        main_extra={
            "transport_maps": f"texthash:{transport}",
            "smtpd_sender_restrictions": "reject_unverified_sender",
            "address_verify_poll_count": "1",
        },
        master_extra=MASTER_VERIFY,
    )

    def rcpt_for_sender():
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail("someone@down.test")
            code, text = s.rcpt(f"{USER1}@rostfix.test")
            return code, text.decode()

    code, text = rcpt_for_sender()
    assert code == 450, text
    assert "<someone@down.test>: Sender address rejected: unverified address: " \
        "Address verification in progress" in text

    def deferred():
        c, t = rcpt_for_sender()
        return (c, t) if "connect to" in t else None
    code, text = wait_for(deferred, timeout=30, interval=0.5, what="the probe's deferral")
    assert code == 450
    assert text.startswith("4.1.7 <someone@down.test>: Sender address rejected: "
                           "unverified address: connect to 127.0.0.1"), text
    inst.wait_queue_empty()
    log = inst.log_text()
    assert "to=<someone@down.test>" in log
    assert "sender non-delivery notification" not in log


def test_cache_through_proxywrite_from_a_chrooted_verify(make_instance, workdir):
    """address_verify_map = proxy:btree:$data_directory/verify_cache: a chrooted verify
    cannot reach data_directory (root's, mode 0700), so the answers it caches are
    written by the proxywrite service (proxy_write_maps' default lists
    $address_verify_map), which opened the table before dropping privileges; they are
    in the table's file, and a restarted mail system answers from it without a new
    probe."""
    port = free_port()
    inst = verifying(
        make_instance, workdir, port,
        {"address_verify_map": "proxy:btree:$data_directory/verify_cache"},
        "verify    unix  -       -       y       -       1       verify\n"
        "proxywrite unix -       -       n       -       1       proxymap\n")
    cache = f"btree:{inst.base / 'data'}/verify_cache"
    sink = Sink(port, rcpt_replies={"bad@verify.test": "550 5.1.1 <bad@verify.test>: no such user"})
    try:
        assert rcpt_reply(inst, "bad@verify.test")[0] == 450
        wait_for(lambda: rcpt_reply(inst, "bad@verify.test")[0] == 550, timeout=30,
                 interval=0.5, what="the cached 550")
        stored = inst.cmd("rostmap", "-q", "bad@verify.test", cache).stdout.decode()
        assert stored.startswith("undeliverable\t") and "no such user" in stored, stored
        assert not (inst.base / "data" / "verify_cache").exists(), "no text cache"
        probes = sink.senders.count("double-bounce@mx.rostfix.test")
        inst.stop()
        inst.start()
        code, text = rcpt_reply(inst, "bad@verify.test")
        assert code == 550 and "no such user" in text, (code, text)
        assert sink.senders.count("double-bounce@mx.rostfix.test") == probes
    finally:
        sink.stop()
