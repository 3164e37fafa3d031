"""sendmail compatibility (issue 5, "What must be shown" 5): -bs speaks SMTP on
stdin/stdout, DSN options are stored, mailq/newaliases are names of sendmail, and the
exit codes for a bad address and a full queue file system are the sysexits ones.
(`sendmail -t` with Bcc: is shown in test_mail_path.py.)"""

import os
import pwd
import subprocess

from harness import USER1, USER2, free_port, maildir_messages, wait_for, BIN

EX_DATAERR = 65
EX_TEMPFAIL = 75


def sendmail(inst, *args, user=USER1, input=b"", name="sendmail"):
    return inst._run([str(inst.bindir / name), "-C", str(inst.conf), *args],
                     check=False, user=user, input=input)


def replies(out):
    """The final line of each SMTP reply, decoded."""
    return [l for l in out.decode().split("\r\n") if len(l) >= 4 and l[3] == " "]


def test_bs_speaks_smtp_on_stdin_stdout(instance):
    script = (
        "EHLO client.example\r\n"
        f"MAIL FROM:<{USER1}@mx.rostfix.test> RET=HDRS\r\n"
        f"RCPT TO:<{USER2}@mx.rostfix.test> NOTIFY=FAILURE\r\n"
        "RCPT TO:<bad address@x>\r\n"
        "DATA\r\n"
        "Subject: via sendmail -bs\r\n"
        "\r\n"
        "..a line that starts with a dot\r\n"
        "body\r\n"
        ".\r\n"
        "VRFY someone\r\n"
        "BOGUS\r\n"
        "QUIT\r\n"
    ).encode()
    proc = sendmail(instance, "-bs", input=script)
    assert proc.returncode == 0, proc.stderr
    got = replies(proc.stdout)
    codes = [r[:3] for r in got]
    assert codes == ["220", "250", "250", "250", "501", "354", "250", "252", "500", "221"], got
    ehlo = proc.stdout.decode()
    assert "250-ENHANCEDSTATUSCODES" in ehlo or "250 ENHANCEDSTATUSCODES" in ehlo
    assert "250-PIPELINING" in ehlo and "250-DSN" in ehlo
    # Enhanced status codes on every reply after the greeting and EHLO.
    assert got[2].startswith("250 2.1.0") and got[3].startswith("250 2.1.5")
    assert got[4].startswith("501 5.1.3"), got[4]
    assert got[6].startswith("250 2.0.0"), got[6]
    assert got[8].startswith("500 5.5.2") and got[9] == "221 2.0.0 Bye"

    msgs = wait_for(lambda: maildir_messages(USER2), what=f"delivery to {USER2}")
    data = msgs[0][1]
    assert b"Subject: via sendmail -bs\n" in data
    assert b"\n.a line that starts with a dot\nbody\n" in data
    assert data.startswith(f"Return-Path: <{USER1}@".encode()), data[:200]
    # In through the maildrop as the invoking user, like any local submission.
    assert f"(Rostfix, from userid {pwd.getpwnam(USER1).pw_uid})".encode() in data


def test_bs_timeout_and_eof_end_the_session(instance):
    proc = sendmail(instance, "-bs", input=b"HELO x\r\nMAIL FROM:<a@b.example>\r\n")
    assert proc.returncode == 0
    assert [r[:3] for r in replies(proc.stdout)] == ["220", "250", "250"]


def test_dsn_options_are_stored_with_the_message(make_instance):
    inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    proc = sendmail(inst, "-N", "failure,delay", "-R", "hdrs", "-V", "env-42",
                    "someone@remote.example", input=b"Subject: dsn\n\nx\n")
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: inst.queue_ids("deferred"), what="the message to be deferred")
    qid = inst.queue_ids("deferred")[0]
    raw = (inst.queue / "deferred" / qid).read_bytes()
    # Recipient record: address NUL orig NUL notify; attributes dsn_ret / dsn_envid.
    assert b"someone@remote.example\0someone@remote.example\0FAILURE,DELAY" in raw, raw[:400]
    assert b"dsn_ret=HDRS" in raw and b"dsn_envid=env-42" in raw


def test_bad_address_is_ex_dataerr_and_queues_nothing(instance):
    for bad in ["a@b@c.example", "user@", "joe@ex..example", "joe@-bad.example"]:
        proc = sendmail(instance, bad, input=b"Subject: x\n\nx\n")
        assert proc.returncode == EX_DATAERR, (bad, proc.returncode, proc.stderr)
        assert b"bad address syntax" in proc.stderr
    proc = sendmail(instance, "-N", "sometimes", USER2, input=b"x\n")
    assert proc.returncode == 64
    assert instance.queue_ids("maildrop", "incoming", "active", "deferred") == []


def test_full_queue_file_system_is_ex_tempfail(make_instance):
    inst = make_instance(start=False)
    inst.queue.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs",
                    str(inst.queue)], check=True)
    try:
        inst.start()
        # Fill the file system (as root, so the reserve is gone too).
        fd = os.open(inst.queue / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass
        finally:
            os.close(fd)
        proc = sendmail(inst, f"{USER2}@mx.rostfix.test",
                        input=b"Subject: full\n\n" + b"y" * 200_000 + b"\n")
        assert proc.returncode == EX_TEMPFAIL, (proc.returncode, proc.stderr)
        assert inst.queue_ids("maildrop") == []
        # Room again: the same submission goes through.
        os.unlink(inst.queue / "filler")
        proc = sendmail(inst, f"{USER2}@mx.rostfix.test", input=b"Subject: room\n\nok\n")
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: maildir_messages(USER2), what="delivery after space was freed")
    finally:
        inst.stop()
        subprocess.run(["umount", "-l", str(inst.queue)], check=False)


def test_mailq_and_newaliases_are_sendmail(make_instance):
    inst = make_instance(main_extra={
        "alias_database": "hash:{conf}/aliases2, texthash:{conf}/aliases",
    }, start=False)
    # The placeholder is filled here: main_extra is written before conf is known.
    main = inst.conf / "main.cf"
    main.write_text(main.read_text().replace("{conf}", str(inst.conf)))
    (inst.conf / "aliases2").write_text("team: someone\n")
    for name in ["mailq", "newaliases"]:
        (inst.bindir / name).symlink_to(inst.bindir / "sendmail")
    (inst.bindir / "rostalias").symlink_to(BIN / "rostmap")
    inst.start()
    proc = sendmail(inst, name="mailq", user=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "Mail queue is empty"
    proc = sendmail(inst, "-bp", user=None)
    assert proc.stdout.decode().strip() == "Mail queue is empty"

    proc = sendmail(inst, name="newaliases", user=None)
    assert proc.returncode == 0, proc.stderr
    assert (inst.conf / "aliases2.rdb").exists()
    q = inst._run([str(inst.bindir / "rostalias"), "-c", str(inst.conf), "-q", "team",
                   f"hash:{inst.conf}/aliases2"])
    assert q.stdout.decode().strip() == "someone"
    os.unlink(inst.conf / "aliases2.rdb")
    proc = sendmail(inst, "-bi", user=None)
    assert proc.returncode == 0 and (inst.conf / "aliases2.rdb").exists()

    proc = sendmail(inst, "-q", user=None)
    assert proc.returncode == 0, proc.stderr


def test_fifo_pickup_and_qmgr_of_older_master_cf_run(make_instance):
    """Older Postfix master.cf files run pickup and qmgr as `fifo` services; master
    runs them on the unix sockets Rostfix's triggers use, says so, and mail goes
    through (before, both were skipped and nothing was ever delivered)."""
    inst = make_instance(start=False)
    master = inst.conf / "master.cf"
    text = master.read_text()
    text = text.replace("pickup    unix  n", "pickup    fifo  n").replace(
        "qmgr      unix  n", "qmgr      fifo  n")
    master.write_text(text)
    inst.start()
    wait_for(lambda: "service pickup/fifo (pickup) runs as pickup/unix" in inst.log_text(),
             what="master's note on the fifo entry")
    before = len(maildir_messages(USER2))
    proc = sendmail(inst, f"{USER2}@mx.rostfix.test",
                    input=b"Subject: through a fifo pickup\n\nbody\n")
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: len(maildir_messages(USER2)) > before, what=f"delivery to {USER2}")
