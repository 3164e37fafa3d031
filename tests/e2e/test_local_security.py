"""local's :include: and alias expansion under attack (issue 12, items 4, 5 and 8),
against a booted instance as root:

- a 30 000-deep :include: chain bounces with a 5.4.6 nesting reason and local stays
  alive (before: the recursion overflowed local's stack, signal 6, on every retry);
- an :include: file owned by another user does not lend its owner's rights to the
  user whose .forward includes it (before: its command ran as the file's owner);
- a self-including file and two files including each other bounce 5.4.6 (before:
  `status=sent (delivered)` with nothing stored);
- an alias loop a -> b -> a bounces 5.4.6 (before: 5.1.1 "unknown user").

Every message is sent by USER2 of this site, so its non-delivery notice lands in
USER2's mailbox, where the tests read it."""

import os
import pwd
from pathlib import Path

import pytest

from harness import USER1, USER2, maildir_messages, wait_for

SENDER = f"{USER2}@mx.rostfix.test"
DEPTH = 30_000


@pytest.fixture
def site(make_instance, workdir):
    """An instance whose alias table points into a private folder of include files."""
    inst = make_instance(start=False, main_extra={
        # Commands from :include: files are needed to see whose rights they run with.
        "allow_mail_to_commands": "alias, forward, include",
    })
    out = inst.base / "lists"
    out.mkdir()
    os.chmod(out, 0o1777)  # commands write their `id -u` here as whatever user
    (inst.conf / "aliases").write_text(
        f"deep: :include:{out}/chain0\n"
        f"selfinc: :include:{out}/self\n"
        f"mutual: :include:{out}/ping\n"
        "aloop: bloop\n"
        "bloop: aloop\n"
        f"rootalias: :include:{out}/user2-owned-via-alias\n"
    )
    # A root-owned hash table, as test_aliases.py builds it (smtpd must see the names).
    aliases = inst.conf / "aliases"
    inst.cmd("rostmap", "-a", f"hash:{aliases}")
    main = (inst.conf / "main.cf").read_text()
    (inst.conf / "main.cf").write_text(main.replace(f"texthash:{aliases}", f"hash:{aliases}"))
    try:
        yield inst, out
    finally:
        fwd = Path(pwd.getpwnam(USER1).pw_dir) / ".forward"
        fwd.unlink(missing_ok=True)


def write(path, text, owner="root", mode=0o644):
    path.write_text(text)
    pw = pwd.getpwnam(owner)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


def send(inst, rcpt, subject):
    with inst.smtp() as s:
        s.sendmail(SENDER, [rcpt],
                   f"From: {SENDER}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode())


def notice_for(subject):
    """The text of the non-delivery notice (RFC 3464) about `subject` in USER2's box."""
    for _, data in maildir_messages(USER2):
        text = data.decode(errors="replace")
        if "multipart/report" in text and f"Subject: {subject}" in text:
            return text
    return None


def subjects(user):
    return [line[9:] for _, d in maildir_messages(user)
            for line in d.decode(errors="replace").splitlines() if line.startswith("Subject:")]


def test_deep_include_chain_bounces_and_local_survives(site):
    inst, out = site
    for i in range(DEPTH):
        (out / f"chain{i}").write_text(f":include:{out}/chain{i + 1}\n")
    (out / f"chain{DEPTH}").write_text(f"{USER1}\n")
    inst.start()
    send(inst, "deep@mx.rostfix.test", "deep chain")
    text = wait_for(lambda: notice_for("deep chain"), timeout=60,
                    what="the non-delivery notice for the deep include chain")
    assert "Status: 5.4.6" in text, text
    assert "nesting" in text, text
    assert "deep chain" not in subjects(USER1)
    # local is still alive and well: the next message is delivered normally.
    send(inst, f"{USER1}@mx.rostfix.test", "after the chain")
    wait_for(lambda: "after the chain" in subjects(USER1), what="the next delivery")
    log = inst.log_text()
    assert "killed by signal" not in log, log[-3000:]
    assert "dsn=5.4.6, status=bounced (mail forwarding loop for deep@mx.rostfix.test" in log


def test_include_owned_by_another_user_does_not_lend_its_rights(site):
    """USER1's .forward includes a file USER2 owns (readable by all) whose command writes
    `id -u`: it runs as USER1, whose list it is. A root-owned alias including the same
    kind of file does take the file owner's rights (Postfix's rule: only root's rights
    give way to the include file owner's)."""
    inst, out = site
    uid1, uid2 = pwd.getpwnam(USER1).pw_uid, pwd.getpwnam(USER2).pw_uid
    write(out / "user2-owned", f'"|id -u > {out}/via-forward.uid"\n', owner=USER2)
    write(out / "user2-owned-via-alias", f'"|id -u > {out}/via-alias.uid"\n', owner=USER2)
    write(out / "user2-private", f'"|id -u > {out}/private.uid"\n', owner=USER2, mode=0o600)
    home = Path(pwd.getpwnam(USER1).pw_dir)
    write(home / ".forward", f":include:{out}/user2-owned\n", owner=USER1)
    inst.start()
    send(inst, f"{USER1}@mx.rostfix.test", "borrowed rights")
    got = out / "via-forward.uid"
    wait_for(lambda: got.exists() and got.read_text().strip(), what="the command's id -u")
    assert int(got.read_text()) == uid1, f"ran as uid {got.read_text().strip()}, not {USER1}"
    send(inst, "rootalias@mx.rostfix.test", "root alias")
    got = out / "via-alias.uid"
    wait_for(lambda: got.exists() and got.read_text().strip(), what="the alias command's id -u")
    assert int(got.read_text()) == uid2
    # A file USER1 cannot read is refused, not read with someone else's rights.
    write(home / ".forward", f":include:{out}/user2-private\n", owner=USER1)
    send(inst, f"{USER1}@mx.rostfix.test", "private list")
    text = wait_for(lambda: notice_for("private list"), what="the refusal notice")
    assert "cannot open include file" in text, text
    assert not (out / "private.uid").exists()


@pytest.mark.parametrize("alias,subject", [("selfinc", "self include"),
                                           ("mutual", "mutual include")])
def test_include_loops_bounce(site, alias, subject):
    inst, out = site
    write(out / "self", f":include:{out}/self\n")
    write(out / "ping", f":include:{out}/pong\n")
    write(out / "pong", f":include:{out}/ping\n")
    inst.start()
    send(inst, f"{alias}@mx.rostfix.test", subject)
    text = wait_for(lambda: notice_for(subject), what="the loop's non-delivery notice")
    assert "Status: 5.4.6" in text, text
    assert "mail forwarding loop" in text, text
    log = inst.log_text()
    outcomes = [line for line in log.splitlines()
                if f"<{alias}@mx.rostfix.test>" in line and "status=" in line]
    assert outcomes, log[-3000:]
    assert not any("status=sent" in line for line in outcomes), outcomes


def test_alias_loop_bounces_as_a_loop(site):
    inst, _ = site
    inst.start()
    send(inst, "aloop@mx.rostfix.test", "alias loop")
    text = wait_for(lambda: notice_for("alias loop"), what="the alias loop's notice")
    assert "Status: 5.4.6" in text, text
    assert "mail forwarding loop" in text, text
    assert "unknown user" not in text, text
