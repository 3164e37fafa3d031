"""Address rewriting as Postfix's cleanup does it (issue 14), through crates/rewrite:
sender_canonical_maps and recipient_canonical_maps rewrite the envelope and the address
headers, canonical_classes limits which, masquerade_domains with a `!` exception and
masquerade_exceptions, automatic BCC (sender_bcc_maps, recipient_bcc_maps, always_bcc)
delivering copies, both for SMTP (smtpd) and for sendmail (pickup), and
receive_override_options = no_address_mappings on a re-entry smtpd turning the tables
off (header addresses still qualified), quoted local parts, and table lookups in
local_header_rewrite_clients. Delivery is real: local users' Maildirs, a loopback SMTP sink as relayhost."""

import re
import time

from harness import USER1, USER2, free_port, maildir_messages, reset_maildir, wait_for
from smtpsink import Sink


def header(msg, name):
    """The (unfolded) values of header `name` in a delivered message."""
    head = msg.split(b"\n\n", 1)[0].decode(errors="replace")
    head = re.sub(r"\n[ \t]+", " ", head)
    return [l.split(":", 1)[1].strip() for l in head.split("\n")
            if l.lower().startswith(name.lower() + ":")]


def one_message(user):
    wait_for(lambda: len(maildir_messages(user)) >= 1, timeout=30, what=f"delivery to {user}")
    msgs = maildir_messages(user)
    assert len(msgs) == 1, [m for _, m in msgs]
    return msgs[0][1]


def fresh():
    for u in (USER1, USER2):
        reset_maildir(u)


REENTRY = """127.0.0.1:{port} inet n - y - - smtpd
    -o receive_override_options=no_address_mappings
"""


def test_sender_and_recipient_canonical_via_smtp(make_instance):
    fresh()
    reentry = free_port()
    inst = make_instance(
        main_extra={
            "sender_canonical_maps": "inline:{ alice@client.example=alice.smith@corp.example }",
            "recipient_canonical_maps": f"inline:{{ info@rostfix.test={USER1}@rostfix.test }}",
        },
        master_extra=REENTRY.format(port=reentry))
    with inst.smtp() as s:
        s.sendmail("alice@client.example", ["info@rostfix.test"],
                   b"From: Alice <alice@client.example>\r\nTo: info@rostfix.test\r\n"
                   b"Subject: canonical\r\n\r\nhello\r\n")
    msg = one_message(USER1)
    assert header(msg, "Return-Path") == ["<alice.smith@corp.example>"], msg
    assert header(msg, "From") == ["Alice <alice.smith@corp.example>"], msg
    assert header(msg, "To") == [f"{USER1}@rostfix.test"], msg
    log = inst.log_text()
    assert "from=<alice.smith@corp.example>" in log, log
    # The re-entry port (no_address_mappings) queues the addresses as they came: the
    # recipient table is not consulted, so USER2 is addressed directly and the
    # sender and From: stay.
    fresh()
    import smtplib
    with smtplib.SMTP("127.0.0.1", reentry, timeout=30) as s:
        s.sendmail("alice@client.example", [f"{USER2}@rostfix.test"],
                   b"From: Alice <alice@client.example>\r\nTo: info@rostfix.test\r\n"
                   b"Subject: re-entry\r\n\r\nhello\r\n")
    msg = one_message(USER2)
    assert header(msg, "Return-Path") == ["<alice@client.example>"], msg
    assert header(msg, "From") == ["Alice <alice@client.example>"], msg
    assert header(msg, "To") == ["info@rostfix.test"], msg


def test_canonical_classes_and_masquerading(make_instance):
    fresh()
    inst = make_instance(main_extra={
        "canonical_maps": "inline:{ bob@client.example=robert@client.example }",
        "canonical_classes": "envelope_sender, envelope_recipient",
        "masquerade_domains": "!keep.rostfix.test, rostfix.test",
        "masquerade_exceptions": "root",
    })
    with inst.smtp() as s:
        s.sendmail("bob@client.example", [f"{USER1}@rostfix.test"],
                   b"From: bob@client.example\r\n"
                   b"Cc: x@host.rostfix.test, y@h.keep.rostfix.test,\r\n"
                   b"\troot@h.rostfix.test\r\nSubject: classes\r\n\r\nhello\r\n")
    msg = one_message(USER1)
    # canonical_classes: the envelope sender only, not the From: header.
    assert header(msg, "Return-Path") == ["<robert@client.example>"], msg
    assert header(msg, "From") == ["bob@client.example"], msg
    # masquerade_classes' default has header_recipient: the `!` entry and the
    # exception keep their hosts.
    assert header(msg, "Cc") == [
        "x@rostfix.test, y@h.keep.rostfix.test, root@h.rostfix.test"], msg
    fresh()
    with inst.smtp() as s:
        s.sendmail("joe@web.rostfix.test", [f"{USER1}@rostfix.test"],
                   b"From: joe@web.rostfix.test\r\nSubject: masq\r\n\r\nhello\r\n")
    msg = one_message(USER1)
    assert header(msg, "Return-Path") == ["<joe@rostfix.test>"], msg
    assert header(msg, "From") == ["joe@rostfix.test"], msg


def test_automatic_bcc_via_smtp_and_sendmail(make_instance):
    fresh()
    sink_port = free_port()
    sink = Sink(sink_port)
    try:
        inst = make_instance(main_extra={
            "relayhost": f"[127.0.0.1]:{sink_port}",
            "sender_bcc_maps": "inline:{ boss@client.example=archive@remote.example }",
            "recipient_bcc_maps": f"inline:{{ {USER1}@rostfix.test={USER2}@rostfix.test }}",
            "always_bcc": "audit@remote.example",
        })
        with inst.smtp() as s:
            s.sendmail("boss@client.example", [f"{USER1}@rostfix.test"],
                       b"From: boss@client.example\r\nSubject: bcc smtp\r\n\r\nhello\r\n")
        assert b"bcc smtp" in one_message(USER1)
        assert b"bcc smtp" in one_message(USER2)
        wait_for(lambda: sink.for_rcpt("archive@remote.example")
                 and sink.for_rcpt("audit@remote.example"), timeout=30, what="sink copies")
        inst.wait_queue_empty()
        # Through pickup: a local submission gets the same copies.
        fresh()
        sink.messages.clear()
        proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf),
                          "-f", "boss@client.example", f"{USER1}@rostfix.test"],
                         check=False, user=USER1,
                         input=b"Subject: bcc sendmail\n\nhello\n")
        assert proc.returncode == 0, proc
        assert b"bcc sendmail" in one_message(USER1)
        assert b"bcc sendmail" in one_message(USER2)
        wait_for(lambda: sink.for_rcpt("archive@remote.example")
                 and sink.for_rcpt("audit@remote.example"), timeout=30, what="sink copies")
    finally:
        sink.stop()


def test_sender_canonical_via_sendmail(make_instance):
    fresh()
    inst = make_instance(main_extra={
        "sender_canonical_maps": f"inline:{{ {USER1}=Test.One@rostfix.test }}",
    })
    proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), USER2],
                     check=False, user=USER1,
                     input=f"From: {USER1}\nTo: {USER2}\nSubject: pickup\n\nhello\n".encode())
    assert proc.returncode == 0, proc
    msg = one_message(USER2)
    # The submitter's address (USER1@$myorigin) found as bare `user` (myorigin is ours).
    assert header(msg, "Return-Path") == ["<Test.One@rostfix.test>"], msg
    assert header(msg, "From") == ["Test.One@rostfix.test"], msg
    # Unqualified header recipients get @$myorigin in the local context.
    assert header(msg, "To") == [f"{USER2}@mx.rostfix.test"], msg


RECIPIENT_REGEXP = r"""# recipient_canonical_maps: NAME.alias@rostfix.test -> NAME@rostfix.test
/^(.+)\.alias@rostfix\.test$/	$1@rostfix.test
"""

HEADER_PORTS = """127.0.0.1:{remote} inet n - y - - smtpd
    -o local_header_rewrite_clients=permit_sasl_authenticated
    -o remote_header_rewrite_domain=remote.invalid
127.0.0.1:{plain} inet n - y - - smtpd
    -o local_header_rewrite_clients=permit_sasl_authenticated
"""


def test_regexp_percent_hack_and_header_contexts(make_instance):
    """A regexp recipient_canonical_maps on envelope and To:, the percent hack
    (`user%domain`) through SMTP and sendmail, and the three header contexts:
    local (our interface: @$myorigin), remote_header_rewrite_domain, none."""
    fresh()
    remote, plain = free_port(), free_port()
    inst = make_instance(master_extra=HEADER_PORTS.format(remote=remote, plain=plain),
                         start=False)
    (inst.conf / "recipient_canonical").write_text(RECIPIENT_REGEXP)
    with open(inst.conf / "main.cf", "a") as main:
        main.write(f"recipient_canonical_maps = regexp:{inst.conf}/recipient_canonical\n"
                   "sender_canonical_maps = inline:{ carol@client.example=carol@corp.example }\n")
    inst.start()
    body = (f"From: carol@client.example\r\nTo: {USER1}.alias@rostfix.test\r\n"
            f"Cc: {USER2}%rostfix.test, nobody\r\nSubject: regexp\r\n\r\nhello\r\n").encode()
    with inst.smtp() as s:
        s.sendmail("carol@client.example", [f"{USER1}.alias@rostfix.test"], body)
    msg = one_message(USER1)
    assert header(msg, "Return-Path") == ["<carol@corp.example>"], msg
    assert header(msg, "From") == ["carol@corp.example"], msg
    assert header(msg, "To") == [f"{USER1}@rostfix.test"], msg
    # Header addresses get the percent hack and @$myorigin (the client is on our
    # interface: permit_inet_interfaces).
    assert header(msg, "Cc") == [f"{USER2}@rostfix.test, nobody@mx.rostfix.test"], msg
    # The percent hack on the envelope: a trusted client's user%domain is delivered
    # to user@domain.
    fresh()
    with inst.smtp() as s:
        s.sendmail("carol@client.example", [f"{USER2}%rostfix.test"],
                   b"Subject: percent smtp\r\n\r\nhello\r\n")
    assert b"percent smtp" in one_message(USER2)
    # The resolve half: user%domain@ourdomain goes to user@domain (qmgr), not to a
    # local user named `user%domain`.
    fresh()
    with inst.smtp() as s:
        s.sendmail("carol@client.example", [f"{USER2}%rostfix.test@mx.rostfix.test"],
                   b"Subject: percent routed\r\n\r\nhello\r\n")
    assert b"percent routed" in one_message(USER2)
    # remote_header_rewrite_domain: a client outside local_header_rewrite_clients
    # gets its unqualified header addresses completed with that domain; the
    # envelope is rewritten all the same.
    fresh()
    import smtplib
    with smtplib.SMTP("127.0.0.1", remote, timeout=30) as s:
        s.sendmail("carol@client.example", [f"{USER1}.alias@rostfix.test"],
                   b"From: carol@client.example\r\nCc: nobody\r\n"
                   b"Subject: remote\r\n\r\nhello\r\n")
    msg = one_message(USER1)
    assert header(msg, "Return-Path") == ["<carol@corp.example>"], msg
    assert header(msg, "From") == ["carol@corp.example"], msg
    assert header(msg, "Cc") == ["nobody@remote.invalid"], msg
    # Neither: headers are left as they came; the envelope is still rewritten.
    fresh()
    with smtplib.SMTP("127.0.0.1", plain, timeout=30) as s:
        s.sendmail("carol@client.example", [f"{USER1}.alias@rostfix.test"],
                   f"From: carol@client.example\r\nTo: {USER1}.alias@rostfix.test\r\n"
                   "Subject: plain\r\n\r\nhello\r\n".encode())
    msg = one_message(USER1)
    assert header(msg, "Return-Path") == ["<carol@corp.example>"], msg
    assert header(msg, "From") == ["carol@client.example"], msg
    assert header(msg, "To") == [f"{USER1}.alias@rostfix.test"], msg
    # sendmail: the percent hack before @$myorigin would be appended.
    fresh()
    proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf),
                      f"{USER2}%rostfix.test"], check=False, user=USER1,
                     input=b"Subject: percent sendmail\n\nhello\n")
    assert proc.returncode == 0, proc
    assert b"percent sendmail" in one_message(USER2)


TABLE_PORTS = """127.0.0.1:{listed} inet n - y - - smtpd
    -o local_header_rewrite_clients=inline:{{127.0.0.1=yes}}
127.0.0.1:{unlisted} inet n - y - - smtpd
    -o local_header_rewrite_clients=check_address_map,inline:{{127.0.0.9=yes}}
"""


def test_quoted_local_parts_no_address_mappings_and_client_tables(make_instance):
    """Header addresses as Postfix's cleanup treats them: a quoted local part is
    looked up unquoted and a result that needs quotes is re-quoted; under
    receive_override_options = no_address_mappings unqualified header addresses are
    still completed with @$myorigin (tables stay off); local_header_rewrite_clients
    accepts a table looked up with the client's address (bare, or after
    check_address_map)."""
    fresh()
    reentry, listed, unlisted = free_port(), free_port(), free_port()
    inst = make_instance(
        main_extra={
            "canonical_maps": f"inline:{{ {{john doe@rostfix.test={USER1}@rostfix.test}}, "
                              "{ann@rostfix.test=\"ann smith\"@rostfix.test} }",
        },
        master_extra=REENTRY.format(port=reentry)
        + TABLE_PORTS.format(listed=listed, unlisted=unlisted))
    with inst.smtp() as s:
        s.sendmail(f"{USER2}@rostfix.test", [f"{USER1}@rostfix.test"],
                   b"From: John <\"john doe\"@rostfix.test>\r\nTo: ann@rostfix.test\r\n"
                   b"Cc: \"bob\"@rostfix.test\r\nSubject: quoted\r\n\r\nhello\r\n")
    msg = one_message(USER1)
    assert header(msg, "From") == [f"John <{USER1}@rostfix.test>"], msg
    assert header(msg, "To") == ["\"ann smith\"@rostfix.test"], msg
    # Nothing to change: kept as written.
    assert header(msg, "Cc") == ["\"bob\"@rostfix.test"], msg

    import smtplib
    fresh()
    with smtplib.SMTP("127.0.0.1", reentry, timeout=30) as s:
        s.sendmail(f"{USER2}@rostfix.test", [f"{USER1}@rostfix.test"],
                   b"From: ann@rostfix.test\r\nCc: nobody\r\nSubject: re-entry\r\n\r\nhi\r\n")
    msg = one_message(USER1)
    assert header(msg, "Cc") == ["nobody@mx.rostfix.test"], msg
    assert header(msg, "From") == ["ann@rostfix.test"], msg  # no canonical_maps

    for port, want in ((listed, "nobody@mx.rostfix.test"), (unlisted, "nobody")):
        fresh()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail(f"{USER2}@rostfix.test", [f"{USER1}@rostfix.test"],
                       b"Cc: nobody\r\nSubject: table\r\n\r\nhi\r\n")
        msg = one_message(USER1)
        assert header(msg, "Cc") == [want], (port, msg)


def test_percent_hack_routing_is_applied_at_each_resolution(make_instance):
    """user%site@ourdomain is routed to user@site when qmgr resolves it, as Postfix's
    trivial-rewrite does, not stored so in the queue file: while the relayhost is
    down the queued recipient is still user%site@ourdomain (logged to=<user@site>,
    orig_to=<...%...>), and after allow_percent_hack = no and a reload the same queued
    message resolves to the local part `user%site` (no such user: bounced)."""
    import json
    inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    routed = "joe%far.example@mx.rostfix.test"
    with inst.smtp() as s:
        s.sendmail(f"{USER1}@rostfix.test", [routed], b"Subject: percent\r\n\r\nhi\r\n")
    wait_for(lambda: inst.queue_ids("deferred"), what="the message to be deferred")
    log = inst.log_text()
    assert f"to=<joe@far.example>, orig_to=<{routed}>" in log, log[-3000:]
    queued = json.loads(inst.cmd("rostqueue", "-j").stdout.decode())
    assert [r["address"] for r in queued["recipients"]] == [routed], queued

    with open(inst.conf / "main.cf", "a") as main:
        main.write("allow_percent_hack = no\n")
    inst.cmd("rostfix", "reload")
    time.sleep(1)
    inst.cmd("rostqueue", "-f")
    wait_for(lambda: f"to=<{routed}>" in inst.log_text() and "status=bounced"
             in inst.log_text(), timeout=60, what="the local part to be bounced")
