"""Virtual domains end to end (issue 5, "What must be shown" 3): two virtual mailbox
domains whose users are delivered by the `virtual` agent into virtual_mailbox_base with
the mapped uid/gid (Maildir and mbox), and a virtual alias domain that rewrites to a
local user and to a remote address (a loopback SMTP sink reached through relayhost).

qmgr routes virtual_mailbox_domains to virtual_transport and expands virtual_alias_maps
(through crates/resolve); the virtual agent delivers."""

import mailbox
import os
import re
from pathlib import Path

from harness import USER1, free_port, maildir_messages, wait_for
from smtpsink import Sink

UID_ONE, UID_TWO, GID = 61001, 61002, 61000


def send(inst, rcpts, subject):
    with inst.smtp() as s:
        s.sendmail("sender@example.org", rcpts,
                   f"From: sender@example.org\r\nSubject: {subject}\r\n\r\nFrom here\r\n".encode())


def test_two_virtual_mailbox_domains(make_instance, workdir):
    inst = make_instance(start=False)
    base = inst.base / "vmail"
    for dom, uid in (("one.test", UID_ONE), ("two.test", UID_TWO)):
        (base / dom).mkdir(parents=True)
        os.chown(base / dom, uid, GID)
    os.chmod(base, 0o755)
    (inst.conf / "vmailbox").write_text(
        "a@one.test   one.test/a/\n"
        "b@one.test   one.test/b/\n"
        "c@two.test   two.test/c\n")
    (inst.conf / "vuid").write_text(f"@one.test {UID_ONE}\n@two.test {UID_TWO}\n")
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() +
                    "virtual_mailbox_domains = one.test, two.test\n"
                    f"virtual_mailbox_maps = texthash:{inst.conf}/vmailbox\n"
                    f"virtual_mailbox_base = {base}\n"
                    f"virtual_uid_maps = texthash:{inst.conf}/vuid\n"
                    f"virtual_gid_maps = static:{GID}\n"
                    "virtual_minimum_uid = 1000\n")
    inst.start()
    send(inst, ["a@one.test", "b@one.test"], "to one")
    send(inst, ["c@two.test"], "to two")
    for user in ("a", "b"):
        new = base / "one.test" / user / "new"
        wait_for(lambda: new.is_dir() and len(list(new.iterdir())) == 1,
                 what=f"{user}@one.test's Maildir")
        f = next(new.iterdir())
        st = f.stat()
        assert (st.st_uid, st.st_gid) == (UID_ONE, GID)
        data = f.read_text()
        assert f"Delivered-To: {user}@one.test\n" in data and "Subject: to one" in data
    box = base / "two.test" / "c"
    wait_for(box.exists, what="c@two.test's mbox")
    st = box.stat()
    assert (st.st_uid, st.st_gid) == (UID_TWO, GID)
    msgs = list(mailbox.mbox(str(box)))
    assert [m["Subject"] for m in msgs] == ["to two"]
    log = inst.log_text()
    for rcpt, where in (("a@one.test", "maildir"), ("b@one.test", "maildir"),
                        ("c@two.test", "mailbox")):
        assert re.search(rf": to=<{rcpt}>, relay=virtual, delay=[\d.]+, delays=[\d./]+, "
                         rf"dsn=2\.0\.0, status=sent \(delivered to {where}\)", log), \
            (rcpt, log[-3000:])


def test_virtual_alias_domain_to_local_and_remote(make_instance):
    sink_port = free_port()
    sink = Sink(sink_port)
    try:
        inst = make_instance(start=False, main_extra={"relayhost": f"[127.0.0.1]:{sink_port}"})
        (inst.conf / "valias").write_text(
            f"info@alias.test  {USER1}@mx.rostfix.test, friend@remote.test\n")
        main = inst.conf / "main.cf"
        main.write_text(main.read_text() +
                        "virtual_alias_domains = alias.test\n"
                        f"virtual_alias_maps = texthash:{inst.conf}/valias\n")
        inst.start()
        send(inst, ["info@alias.test"], "valias")
        wait_for(lambda: any(b"Subject: valias" in d for _, d in maildir_messages(USER1)),
                 what="the local user's copy")
        wait_for(lambda: sink.for_rcpt("friend@remote.test"), what="the remote copy")
    finally:
        sink.stop()
