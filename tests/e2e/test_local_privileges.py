"""local's privileges against a booted instance (issue 12, items 2, 3 and 10-local):

- a regexp alias table may not substitute `$1` into a command: an unauthenticated
  RCPT with backticks in its local part must never reach a shell (Postfix opens
  alias_maps "paranoid");
- commands and files delivered for uid 0 (root's .forward, mailbox_command for root)
  run as default_privs, not as root;
- a file delivery refuses an executable destination;
- command_expansion_filter / execution_directory_expansion_filter replace what the
  client chose with `_` in a command's environment and working directory.

Root's own home is left alone: a second uid-0 login (PREFIXroot, home in the session
folder) stands for root, so the tests do not touch /root/.forward."""

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from harness import TEST_USER_PREFIX, wait_for

ROOT_ALIAS = TEST_USER_PREFIX + "root"


def send(inst, sender, rcpt, subject):
    with inst.smtp() as s:
        s.sendmail(sender, [rcpt],
                   f"From: x@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n".encode())


def local_result(inst):
    """Waits for local's first `to=<...>, relay=local, ..., status=` line; returns it."""
    def line():
        return next((l for l in inst.log_text().splitlines()
                     if "rostfix/local[" in l and "relay=local" in l), None)
    return wait_for(line, what="local's delivery result")


def outdir(inst):
    """A folder default_privs (nobody) may write in; lower case, because alias lookups
    fold the local part and the regexp test puts this path into one."""
    out = inst.base / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    assert str(out) == str(out).lower()
    return out


@pytest.fixture
def uid0_user(workdir):
    """A login with uid 0 and its own home: mail for it is mail for root."""
    home = Path(workdir) / "home" / ROOT_ALIAS
    home.mkdir(exist_ok=True)
    os.chmod(home, 0o755)
    subprocess.run(["userdel", "-f", ROOT_ALIAS], capture_output=True, check=False)
    subprocess.run(["useradd", "-o", "-u", "0", "-g", "0", "-M", "-d", str(home),
                    "-s", "/bin/sh", ROOT_ALIAS], check=True)
    try:
        yield home
    finally:
        subprocess.run(["userdel", "-f", ROOT_ALIAS], check=False)
        (home / ".forward").unlink(missing_ok=True)


def test_regexp_alias_does_not_substitute_client_text_into_a_command(make_instance):
    inst = make_instance(start=False)
    out = outdir(inst)
    table = inst.conf / "aliases.regexp"
    table.write_text(f"/^(.*)-archive$/ |/bin/echo archiving $1 > {out}/archived\n")
    # The alias key is folded to lower case and a local part has no space, so the
    # injected text runs a script of ours rather than `touch ${IFS}...`: it only has to
    # be executed by the shell to leave its marker.
    pwned = out / "pwned"
    script = out / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {pwned}\n")
    os.chmod(script, 0o755)
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + f"alias_maps = regexp:{table}\n")
    inst.start()
    # Backticks and slashes are legal in an unquoted local part (RFC 5321 atext).
    rcpt = f"`{script}`-archive@mx.rostfix.test"
    send(inst, "attacker@example.org", rcpt, "inject")
    result = local_result(inst)
    assert not pwned.exists(), "the client's text ran in a shell"
    assert not (out / "archived").exists(), "the command ran"
    assert "dsn=4.3.0, status=deferred" in result, result
    log = inst.log_text()
    assert f"alias database regexp:{table} unavailable" in log, log[-3000:]
    assert "regular expression substitution is not allowed" in log, log[-3000:]


def test_root_forward_command_and_file_run_as_default_privs(make_instance, uid0_user):
    inst = make_instance(start=False)
    out = outdir(inst)
    fwd = uid0_user / ".forward"
    fwd.write_text(f"\"|id -u > {out}/uid\", {out}/root.mbox\n")
    os.chmod(fwd, 0o644)
    inst.start()
    send(inst, "someone@example.org", f"{ROOT_ALIAS}@mx.rostfix.test", "for root")
    wait_for(lambda: (out / "uid").exists() and (out / "uid").read_text().strip(),
             what="the .forward command's output")
    wait_for(lambda: (out / "root.mbox").exists() and "for root" in (out / "root.mbox").read_text(),
             what="the .forward file delivery")
    nobody = pwd.getpwnam("nobody")
    assert (out / "uid").read_text().strip() == str(nobody.pw_uid)
    st = os.stat(out / "root.mbox")
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)


def test_mailbox_command_for_root_runs_as_default_privs(make_instance, uid0_user):
    inst = make_instance(start=False)
    out = outdir(inst)
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + f"mailbox_command = id -u > {out}/mbc-uid\n")
    inst.start()
    send(inst, "someone@example.org", f"{ROOT_ALIAS}@mx.rostfix.test", "mailbox_command")
    wait_for(lambda: (out / "mbc-uid").exists() and (out / "mbc-uid").read_text().strip(),
             what="mailbox_command's output")
    assert (out / "mbc-uid").read_text().strip() == str(pwd.getpwnam("nobody").pw_uid)
    assert os.stat(out / "mbc-uid").st_uid == pwd.getpwnam("nobody").pw_uid


def test_file_delivery_refuses_an_executable_file(make_instance):
    inst = make_instance(start=False)
    out = outdir(inst)
    target = out / "tool.sh"
    target.write_text("#!/bin/sh\necho hello\n")
    os.chmod(target, 0o777)
    # texthash: postmap(5) syntax, `key value`.
    (inst.conf / "aliases").write_text(f"exe {target}\n")
    inst.start()
    send(inst, "someone@example.org", "exe@mx.rostfix.test", "into a script")
    result = local_result(inst)
    assert target.read_text() == "#!/bin/sh\necho hello\n", "appended to a script"
    assert "dsn=5.7.1, status=bounced" in result, result
    assert "destination file is executable" in result, result


def test_command_environment_and_directory_are_filtered(make_instance):
    inst = make_instance(start=False)
    out = outdir(inst)
    filtered_ext = "x_id__y_z"
    (out / filtered_ext).mkdir()
    os.chmod(out / filtered_ext, 0o777)
    (inst.conf / "aliases").write_text(f"filt \"|env > {out}/env; pwd > {out}/pwd\"\n")
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + "recipient_delimiter = +\n"
                    f"command_execution_directory = {out}/$extension\n")
    inst.start()
    send(inst, "a&b@example.org", "filt+x`id`|y&z@mx.rostfix.test", "filtered")
    result = local_result(inst)
    assert "status=sent" in result, result
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines()
               if "=" in line)
    assert env["EXTENSION"] == filtered_ext
    assert env["RECIPIENT"] == f"filt+{filtered_ext}@mx.rostfix.test"
    assert env["LOCAL"] == f"filt+{filtered_ext}"
    assert env["SENDER"] == "a_b@example.org"
    assert (out / "pwd").read_text().strip() == f"{out}/{filtered_ext}"


def test_local_rests_as_mail_owner_between_deliveries(make_instance):
    """Issue 12 item 10: local holds mail_owner's effective ids except while it
    delivers (Postfix's local does), so a queue file or path that mail_owner controls
    is never opened with root's rights between deliveries. Its real uid stays 0 so it
    can take root back for the next recipient, which must still be delivered as that
    recipient."""
    from harness import MAIL_OWNER, USER1, USER2, maildir_messages
    inst = make_instance()
    owner = pwd.getpwnam(MAIL_OWNER).pw_uid
    send(inst, "a@example.org", f"{USER1}@mx.rostfix.test", "first")
    wait_for(lambda: maildir_messages(USER1), what=f"delivery to {USER1}")
    local_pids = wait_for(
        lambda: [p for p, n in inst.processes().items() if n == "local"] or None,
        what="an idle local process")
    for pid in local_pids:
        with open(f"/proc/{pid}/status") as f:
            status = dict(l.split(":", 1) for l in f if ":" in l)
        real, effective, saved, _fs = (int(x) for x in status["Uid"].split())
        assert real == 0, f"local[{pid}] real uid {real}"
        assert effective == owner, f"local[{pid}] rests with euid {effective}, not {MAIL_OWNER}"
        egid = int(status["Gid"].split()[1])
        assert egid == pwd.getpwnam(MAIL_OWNER).pw_gid, f"local[{pid}] egid {egid}"
    # The same process takes root back for the next delivery, as the recipient.
    send(inst, "a@example.org", f"{USER2}@mx.rostfix.test", "second")
    msgs = wait_for(lambda: maildir_messages(USER2), what=f"delivery to {USER2}")
    assert os.stat(msgs[0][0]).st_uid == pwd.getpwnam(USER2).pw_uid
