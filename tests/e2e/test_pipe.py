"""pipe(8) delivery (issue 14, "Must be shown": pipe to a script that exits 75 and 67,
deferred and bounced as Postfix would; pipe to dovecot-lda). master.cf pipe services
are reached through transport_maps; each runs a small shell script that records its
uid, argv and standard input into a directory of the test, as an unprivileged user."""

import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness import USER1, USER2, free_port, wait_for

RECORDER = """#!/bin/sh
# Records who ran it, with which arguments and input, then exits with $CODE.
out={out}
n=$(ls "$out" | wc -l)
f="$out/call-$n"
{{
  echo "uid=$(id -u)"
  for a in "$@"; do echo "arg=$a"; done
  echo "==stdin=="
  cat
}} > "$f.tmp"
mv "$f.tmp" "$f"
echo "recorder says {code}"
exit {code}
"""


def recorder(workdir, name, code):
    """A script writing into a directory USER1 owns; returns (script, directory)."""
    base = Path(workdir) / f"pipe-{name}-{os.getpid()}"
    if base.exists():
        shutil.rmtree(base)
    out = base / "out"
    out.mkdir(parents=True)
    pw = pwd.getpwnam(USER1)
    os.chown(out, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o755)
    script = base / "record"
    script.write_text(RECORDER.format(out=out, code=code))
    os.chmod(script, 0o755)
    return script, out


def calls(out):
    return sorted((p for p in out.iterdir() if not p.name.endswith(".tmp")),
                  key=lambda p: int(p.name.split("-")[1]))


def transport_table(workdir, rows):
    t = Path(workdir) / f"pipe-transport-{os.getpid()}"
    t.write_text("".join(f"{k} {v}\n" for k, v in rows))
    os.chmod(t, 0o644)
    return t


def test_pipe_delivers_as_user_with_flags_and_macros(make_instance, workdir):
    one, one_out = recorder(workdir, "one", 0)
    many, many_out = recorder(workdir, "many", 0)
    t = transport_table(workdir, [("one.test", "recorder:"), ("many.test", "batch:gw.example")])
    master = (
        f"recorder unix - n n - - pipe flags=DROhu user={USER1} "
        f"argv={one} -f ${{sender}} -d ${{user}} -x ${{extension}} -n ${{nexthop}} "
        f"-o ${{original_recipient}} -s ${{size}} -q ${{queue_id}} -c ${{client_address}}\n"
        f"batch unix - n n - - pipe flags=R user={USER1} "
        f"argv={many} -- ${{recipient}}\n"
    )
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{t}",
        "recipient_delimiter": "+",
        "batch_destination_recipient_limit": "2",
    }, master_extra=master)
    with inst.smtp() as s:
        s.sendmail(f"{USER2}@rostfix.test", ["Alice+Tag@ONE.test"],
                   b"Subject: piped\r\n\r\nFrom the body\r\n")
        s.sendmail("", ["a@many.test", "b@many.test"], b"Subject: batch\r\n\r\nx\r\n")
    wait_for(lambda: calls(one_out) and calls(many_out), timeout=30,
             what="both pipe commands to run")
    inst.wait_queue_empty()

    text = calls(one_out)[0].read_text()
    head, _, stdin = text.partition("==stdin==\n")
    args = [l[4:] for l in head.splitlines() if l.startswith("arg=")]
    # Run as user=, never as root.
    assert f"uid={pwd.getpwnam(USER1).pw_uid}\n" in head
    qid = args[args.index("-q") + 1]
    assert args == [
        "-f", f"{USER2}@rostfix.test",
        "-d", "alice", "-x", "tag",
        "-n", "one.test",
        "-o", "alice+tag@one.test",
        "-s", args[args.index("-s") + 1],
        "-q", qid,
        "-c", "127.0.0.1",
    ], args
    assert int(args[args.index("-s") + 1]) > 0
    assert stdin.startswith(
        f"Return-Path: <{USER2}@rostfix.test>\n"
        "X-Original-To: Alice+Tag@ONE.test\n"
        "Delivered-To: alice+tag@one.test\n"), stdin
    assert "Subject: piped\n" in stdin and "\nFrom the body\n" in stdin

    # Two recipients, one invocation: ${recipient} repeated as Postfix does.
    batch = calls(many_out)
    assert len(batch) == 1, [p.read_text() for p in batch]
    bhead, _, bstdin = batch[0].read_text().partition("==stdin==\n")
    assert [l[4:] for l in bhead.splitlines() if l.startswith("arg=")] == \
        ["--", "a@many.test", "b@many.test"]
    assert bstdin.startswith("Return-Path: <>\n")

    log = inst.log_text()
    assert re.search(rf"{qid}: to=<Alice\+Tag@ONE\.test>, relay=recorder, .*dsn=2\.0\.0, "
                     r"status=sent \(delivered via recorder service\)", log), log
    assert "to=<b@many.test>, relay=batch," in log


def test_exit_75_defers_and_67_bounces(make_instance, workdir):
    temp, temp_out = recorder(workdir, "temp", 75)
    nouser, nouser_out = recorder(workdir, "nouser", 67)
    t = transport_table(workdir, [("temp.test", "tempfail:"), ("nouser.test", "nouser:")])
    master = (
        f"tempfail unix - n n - - pipe user={USER1} argv={temp} ${{recipient}}\n"
        f"nouser unix - n n - - pipe user={USER1} argv={nouser} ${{recipient}}\n"
    )
    inst = make_instance(main_extra={"transport_maps": f"texthash:{t}"}, master_extra=master)
    with inst.smtp() as s:
        s.sendmail(f"{USER2}@rostfix.test", ["later@temp.test"], b"Subject: t\r\n\r\nx\r\n")
        s.sendmail(f"{USER2}@rostfix.test", ["never@nouser.test"], b"Subject: n\r\n\r\nx\r\n")
    log = wait_for(lambda: (lambda l: l if "status=bounced" in l and "status=deferred" in l
                            else None)(inst.log_text()), timeout=30,
                   what="the deferral and the bounce")
    assert calls(temp_out) and calls(nouser_out)
    assert re.search(r"to=<later@temp\.test>, relay=tempfail, .*dsn=4\.3\.0, "
                     r"status=deferred \(temporary failure\. Command output: recorder says 75\)",
                     log), log
    assert re.search(r"to=<never@nouser\.test>, relay=nouser, .*dsn=5\.1\.1, "
                     r"status=bounced \(user unknown\. Command output: recorder says 67\)",
                     log), log
    # The deferred one waits in the queue; the bounced one is gone (its notice goes
    # to the sender).
    wait_for(lambda: len(inst.queue_ids("deferred")) == 1, timeout=30,
             what="the deferred message in deferred/")


def test_user_root_is_refused(make_instance, workdir):
    script, out = recorder(workdir, "root", 0)
    t = transport_table(workdir, [("root.test", "asroot:")])
    master = f"asroot unix - n n - - pipe user=root argv={script} ${{recipient}}\n"
    # qmgr waits ipc_timeout for an agent that never answers before deferring.
    inst = make_instance(main_extra={"transport_maps": f"texthash:{t}", "ipc_timeout": "5s"},
                         master_extra=master)
    with inst.smtp() as s:
        s.sendmail(f"{USER2}@rostfix.test", ["x@root.test"], b"Subject: r\r\n\r\nx\r\n")
    wait_for(lambda: "fatal: user= command-line attribute specifies root privileges: root"
             in inst.log_text(), timeout=30, what="pipe to refuse user=root")
    # The command never ran, as root or otherwise: the service did not start, so the
    # mail waits (deferred), as with Postfix.
    wait_for(lambda: inst.queue_ids("deferred"), timeout=60, what="the message deferred")
    assert calls(out) == []


DOVECOT_LDA = Path("/usr/lib/dovecot/dovecot-lda")


@pytest.mark.skipif(not DOVECOT_LDA.exists(), reason="dovecot-core not installed")
def test_pipe_to_dovecot_lda(make_instance, workdir):
    """The Debian/Dovecot wiki entry: pipe flags=DRO user=... argv=dovecot-lda -f
    ${sender} -a ${recipient}, with a private Dovecot configuration; the message lands
    in the Maildir Dovecot keeps for the user, with the headers the flags add."""
    d = Path(workdir) / f"lda-{os.getpid()}"
    if d.exists():
        shutil.rmtree(d)
    (d / "mail").mkdir(parents=True)
    os.chmod(d, 0o755)
    os.chmod(d / "mail", 0o1777)
    conf = d / "dovecot.conf"
    conf.write_text(f"""# written by tests/e2e/test_pipe.py
base_dir = {d}/run
state_dir = {d}/state
log_path = /dev/stderr
mail_location = maildir:{d}/mail/%n
first_valid_uid = 1
ssl = no
""")
    os.chmod(conf, 0o644)
    t = transport_table(workdir, [("lda.test", "dovecot:")])
    master = (f"dovecot unix - n n - - pipe flags=DRO user={USER1} "
              f"argv={DOVECOT_LDA} -c {conf} -f ${{sender}} -a ${{recipient}}\n")
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{t}",
        "dovecot_destination_recipient_limit": "1",
    }, master_extra=master)
    with inst.smtp() as s:
        s.sendmail(f"{USER2}@rostfix.test", ["Box@lda.test"],
                   b"Subject: through dovecot-lda\r\n\r\nhello lda\r\n")
    new = d / "mail" / USER1 / "new"
    wait_for(lambda: new.is_dir() and list(new.iterdir()), timeout=30,
             what="the message in Dovecot's Maildir")
    f = next(new.iterdir())
    assert f.stat().st_uid == pwd.getpwnam(USER1).pw_uid
    data = f.read_text()
    assert data.startswith(f"Return-Path: <{USER2}@rostfix.test>\n"), data
    assert "X-Original-To: Box@lda.test\nDelivered-To: box@lda.test\n" in data, data
    assert "Subject: through dovecot-lda\n" in data and "hello lda" in data
    wait_for(lambda: re.search(r"to=<Box@lda\.test>, relay=dovecot, .*dsn=2\.0\.0, "
                               r"status=sent \(delivered via dovecot service\)",
                               inst.log_text()), timeout=20, what="the delivery line")
    inst.wait_queue_empty()
