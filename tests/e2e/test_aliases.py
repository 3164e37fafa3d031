"""local's aliases, :include:, |command, /file and .forward end to end (issue 5, "What
must be shown" 1): an alias to two users, to a pipe command and to a file, an
:include: list, a .forward to an external address (a Python SMTP sink on loopback,
reached through relayhost), and a forwarding loop through a remote site that is
detected by Delivered-To and bounced once, not repeated."""

import os
import pwd
from pathlib import Path

import pytest

from harness import USER1, USER2, free_port, maildir_messages, wait_for
from smtpsink import Sink


@pytest.fixture
def site(make_instance, workdir):
    """An instance with an alias table built by rostalias, and a sink as relayhost."""
    sink_port = free_port()
    out = Path(workdir) / f"alias-out-{sink_port}"
    out.mkdir()
    os.chmod(out, 0o777)  # the pipe and file run as default_privs (nobody)
    inst = make_instance(start=False, main_extra={"relayhost": f"[127.0.0.1]:{sink_port}"})
    aliases = inst.conf / "aliases"
    (out / "list.txt").write_text(f"# an include list\n{USER1}\n{USER2}\n")
    os.chmod(out / "list.txt", 0o644)
    aliases.write_text(
        "# aliases(5) source, built with rostalias\n"
        f"both: {USER1},\n"
        f"    {USER2}\n"  # a continuation line
        f"pipe: \"|cat > {out}/pipe.out; echo $RECIPIENT $SENDER $USER >> {out}/pipe.out\"\n"
        f"file: {out}/file.mbox\n"
        f"staff: :include:{out}/list.txt\n"
        "\"quoted name\": " + USER2 + "\n"
        "loop: loop@remote.test\n"
        "tempfail: \"|exit 75\"\n"
        "nouser: \"|exit 67\"\n"
        f"owned: {USER1}, no-such-member-xyz\n"
        f"owner-owned: {USER2}\n"
    )
    inst.cmd("rostmap", "-a", f"hash:{aliases}")
    main = (inst.conf / "main.cf").read_text()
    main = main.replace(f"texthash:{aliases}", f"hash:{aliases}")
    (inst.conf / "main.cf").write_text(main)
    sink = Sink(sink_port, remail={"loop@remote.test": ("127.0.0.1", inst.port,
                                                        "loop@mx.rostfix.test")})
    try:
        inst.start()
        yield inst, sink, out
    finally:
        sink.stop()
        for user in (USER1, USER2):
            fwd = Path(pwd.getpwnam(user).pw_dir) / ".forward"
            fwd.unlink(missing_ok=True)


def send(inst, rcpt, subject, sender="sender@example.org"):
    with inst.smtp() as s:
        s.sendmail(sender, [rcpt], f"From: {sender}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode())


def subjects(user):
    out = []
    for _, data in maildir_messages(user):
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("Subject:"):
                out.append(line[9:])
                break
    return out


def test_alias_to_two_users(site):
    inst, _, _ = site
    send(inst, "both@mx.rostfix.test", "to both")
    wait_for(lambda: "to both" in subjects(USER1) and "to both" in subjects(USER2),
             what="both users")
    # local logs a delivery after writing it: wait for the line, do not race it. The
    # bare name of the alias list is logged qualified with @$myorigin, as Postfix does.
    wait_for(lambda: f"to=<{USER1}@mx.rostfix.test>, orig_to=<both@mx.rostfix.test>, relay=local"
             in inst.log_text(), what="the log line of the alias expansion")
    data = maildir_messages(USER1)[0][1].decode()
    assert "Delivered-To: both@mx.rostfix.test\n" in data


def test_alias_to_pipe_and_file(site):
    inst, _, out = site
    send(inst, "pipe@mx.rostfix.test", "to pipe")
    send(inst, "file@mx.rostfix.test", "to file")
    pipe_out = out / "pipe.out"
    wait_for(lambda: pipe_out.exists() and "pipe@mx.rostfix.test" in pipe_out.read_text(),
             what="the pipe command's output")
    text = pipe_out.read_text()
    assert text.startswith("From sender@example.org ")
    assert "Subject: to pipe" in text
    assert text.rstrip().endswith("pipe@mx.rostfix.test sender@example.org nobody")
    assert os.stat(pipe_out).st_uid == pwd.getpwnam("nobody").pw_uid
    mbox = out / "file.mbox"
    wait_for(lambda: mbox.exists() and "to file" in mbox.read_text(), what="the file")
    import mailbox
    msgs = list(mailbox.mbox(str(mbox)))
    assert [m["Subject"] for m in msgs] == ["to file"]
    # local logs a delivery after writing it: wait for the lines, do not race them.
    wait_for(lambda: "delivered to command: cat >" in inst.log_text(),
             what="the log line of the command delivery")
    wait_for(lambda: f"delivered to file: {out}/file.mbox" in inst.log_text(),
             what="the log line of the file delivery")


def test_pipe_exit_codes(site):
    inst, _, _ = site
    send(inst, "tempfail@mx.rostfix.test", "tempfail", sender=f"{USER2}@mx.rostfix.test")
    send(inst, "nouser@mx.rostfix.test", "nouser", sender=f"{USER2}@mx.rostfix.test")
    wait_for(lambda: "dsn=4.3.0, status=deferred (temporary failure)" in inst.log_text(),
             what="EX_TEMPFAIL deferred")
    wait_for(lambda: "dsn=5.1.1, status=bounced (user unknown)" in inst.log_text(),
             what="EX_NOUSER bounced")
    wait_for(lambda: any("nouser" in d.decode(errors="replace")
                         and "5.1.1" in d.decode(errors="replace")
                         for _, d in maildir_messages(USER2)),
             what="the bounce notice for the 67 exit")


def test_owner_alias_gets_the_members_failures(site):
    """A member of `owned` does not exist: the notice goes to owner-owned (USER2), as
    Postfix's local does, and the sender (whose site is the sink) hears nothing."""
    inst, sink, _ = site
    send(inst, "owned@mx.rostfix.test", "owned list", sender="poster@example.org")
    wait_for(lambda: "owned list" in subjects(USER1), what="the existing member's copy")

    def owner_notice():
        for _, d in maildir_messages(USER2):
            text = d.decode(errors="replace")
            if "multipart/report" in text and "no-such-member-xyz" in text:
                return text
        return None
    text = wait_for(owner_notice, what="the failure notice in owner-owned's mailbox")
    assert "Subject: owned list" in text  # the returned message
    assert "5.1.1" in text
    wait_for(lambda: f"to=<{USER2}@mx.rostfix.test>, orig_to=<owner-owned@mx.rostfix.test>, "
             "relay=local"
             in inst.log_text(), what="the notice's delivery line (owner-owned -> USER2)")
    # The notices are written before the original leaves active/; once the queue is
    # empty, a notice to the sender would have been delivered to the sink (which
    # records a message before its 250).
    wait_for(lambda: not inst.queue_ids(), what="every message to leave the queue")
    assert not sink.for_rcpt("poster@example.org"), "the sender got a notice"


def test_include_list(site):
    inst, _, _ = site
    send(inst, "staff@mx.rostfix.test", "to staff")
    wait_for(lambda: "to staff" in subjects(USER1) and "to staff" in subjects(USER2),
             what="the include list's members")


def test_dot_forward_to_external_address(site):
    inst, sink, _ = site
    home = Path(pwd.getpwnam(USER1).pw_dir)
    fwd = home / ".forward"
    fwd.write_text(f"# keep a copy and forward one\n\\{USER1}, friend@remote.test\n")
    pw = pwd.getpwnam(USER1)
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    send(inst, f"{USER1}@mx.rostfix.test", "forward me")
    wait_for(lambda: sink.for_rcpt("friend@remote.test"), what="the forwarded copy at the sink")
    sender, rcpts, data = sink.for_rcpt("friend@remote.test")[0]
    assert sender == "sender@example.org"
    assert f"Delivered-To: {USER1}@mx.rostfix.test" in data
    assert "Subject: forward me" in data
    wait_for(lambda: "forward me" in subjects(USER1), what="the kept copy (\\user)")
    assert "status=sent (forwarded as " in inst.log_text()


def test_group_writable_forward_is_ignored(site):
    inst, sink, _ = site
    home = Path(pwd.getpwnam(USER2).pw_dir)
    fwd = home / ".forward"
    fwd.write_text("thief@remote.test\n")
    pw = pwd.getpwnam(USER2)
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o664)
    send(inst, f"{USER2}@mx.rostfix.test", "not stolen")
    wait_for(lambda: "not stolen" in subjects(USER2), what="mailbox delivery")
    assert not sink.for_rcpt("thief@remote.test")


def test_forwarding_loop_is_bounced_once(site):
    inst, sink, _ = site
    send(inst, "loop@mx.rostfix.test", "loop", sender=f"{USER2}@mx.rostfix.test")
    wait_for(lambda: "mail forwarding loop for loop@mx.rostfix.test" in inst.log_text(),
             what="the loop to be detected")
    wait_for(lambda: any("5.4.6" in d.decode(errors="replace") for _, d in maildir_messages(USER2)),
             what="the bounce notice to the sender")
    # The sink passes its copy back before it answers 250, so the copy that was bounced
    # arrived after the one forwarded; a second round would have been forwarded again
    # before that bounce.
    wait_for(lambda: not inst.queue_ids(), what="every message to leave the queue")
    assert len(sink.for_rcpt("loop@remote.test")) == 1, "the loop went round more than once"
    assert inst.log_text().count("mail forwarding loop for loop@mx.rostfix.test") == 1
