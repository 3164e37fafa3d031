"""X-Original-To (issue 14, Routing): local and virtual add `X-Original-To:` with the
recipient as the message arrived (before virtual and local aliases), above
`Delivered-To:`, as Postfix's local(8) and virtual(8) do; an lmtp service with
master.cf `flags=DO` (Postfix 3.0's smtp/lmtp flags) adds them to what it sends, here
to a real Dovecot LMTP (mailbox_transport), read back over IMAP."""

import os
import re

from harness import USER1, maildir_messages, wait_for
from test_lmtp import dovecot, imap_messages  # noqa: F401 (fixture)


def header_block(data):
    return data.split(b"\n\n", 1)[0].decode()


def test_local_and_virtual_copies_carry_x_original_to(make_instance):
    inst = make_instance(start=False)
    base = inst.base / "vmail"
    (base / "box.test").mkdir(parents=True)
    os.chown(base / "box.test", 61001, 61000)
    os.chmod(base, 0o755)
    (inst.conf / "valias").write_text(
        f"Sales@valias.test {USER1}@rostfix.test\n"
        "info@valias.test team@box.test\n")
    (inst.conf / "vmailbox").write_text("team@box.test box.test/team/\n")
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() +
                    "virtual_alias_domains = valias.test\n"
                    f"virtual_alias_maps = texthash:{inst.conf}/valias\n"
                    "virtual_mailbox_domains = box.test\n"
                    f"virtual_mailbox_maps = texthash:{inst.conf}/vmailbox\n"
                    f"virtual_mailbox_base = {base}\n"
                    "virtual_uid_maps = static:61001\n"
                    "virtual_gid_maps = static:61000\n"
                    "virtual_minimum_uid = 1000\n")
    inst.start()
    before = len(maildir_messages(USER1))
    with inst.smtp() as s:
        s.sendmail("sender@example.org", ["Sales@valias.test"],
                   b"Subject: to sales\r\n\r\nbody\r\n")
        s.sendmail("sender@example.org", ["info@valias.test"],
                   b"Subject: to info\r\n\r\nbody\r\n")
    msgs = wait_for(lambda: len(maildir_messages(USER1)) > before and maildir_messages(USER1),
                    timeout=30, what="the local delivery")
    head = header_block(msgs[-1][1])
    assert head.startswith(
        "Return-Path: <sender@example.org>\n"
        "X-Original-To: Sales@valias.test\n"
        f"Delivered-To: {USER1}@rostfix.test\n"), head
    new = base / "box.test" / "team" / "new"
    wait_for(lambda: new.is_dir() and list(new.iterdir()), timeout=30,
             what="the virtual delivery")
    vhead = header_block(next(new.iterdir()).read_bytes())
    assert vhead.startswith(
        "Return-Path: <sender@example.org>\n"
        "X-Original-To: info@valias.test\n"
        "Delivered-To: team@box.test\n"), vhead
    inst.wait_queue_empty()


def test_lmtp_flags_do_to_dovecot(make_instance, dovecot):
    inst = make_instance(main_extra={
        "mailbox_transport": "lmtpdo:unix:private/dovecot-lmtp",
        "lmtpdo_destination_recipient_limit": "1",
        "local_recipient_maps": "",
    }, master_extra="lmtpdo unix - - y - - lmtp flags=DO\n", start=False)
    (inst.conf / "aliases").write_text(f"info {USER1}\n")
    inst.start()
    imap_port = dovecot(str(inst.queue / "private" / "dovecot-lmtp"))
    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["info@mx.rostfix.test"],
                   b"Subject: original recipient\r\n\r\nhello\r\n")
    msgs = wait_for(lambda: imap_messages(imap_port), timeout=40,
                    what="the message in Dovecot's INBOX")
    head = header_block(msgs[0].replace(b"\r\n", b"\n"))
    # Ours come first in what lmtp sent; Dovecot puts its own Return-Path and
    # Received above them.
    assert "X-Original-To: info@mx.rostfix.test\n" \
           f"Delivered-To: {USER1}@mx.rostfix.test\n" in head + "\n", head
    wait_for(lambda: re.search(r"rostfix/lmtp\[\d+\]: [0-9A-F]+: to=<" + USER1
                               + r"@mx\.rostfix\.test>, orig_to=<info@mx\.rostfix\.test>, "
                               r"relay=.*status=sent", inst.log_text()),
             timeout=20, what="the lmtp delivery line")
