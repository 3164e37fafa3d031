"""rostmap and rostalias against the real postmap and postalias (issue 5, "What must be
shown" 4): the same tables queried with the same keys give the same answers, regexp
substitutions included; and a table changed on disk is used by a running instance
without a restart.

Postfix's tools come from Debian's postfix package, unpacked (not installed) by
tests/fetch-postfix-tools.sh; without it the comparison tests skip with the reason."""

import os
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import BIN, USER1, USER2, maildir_messages, wait_for

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "tests" / "fetch-postfix-tools.sh"

# Keys asked of every table: hits, misses, case variants, address forms.
KEYS = [
    "alice@example.com", "ALICE@Example.COM", "bob@example.com", "bob+tag@example.com",
    "example.org", "EXAMPLE.org", "sub.example.org", "carol@example.net", "nobody",
    "postmaster", "1.2.3.4", "10.1.2.3", "10.9.9.9", "192.168.7.8", "x@spam.example",
    "mailer-daemon@host.example", "joe@example.com", "Joe.Smith@Example.com",
]

HASH = """\
# a comment
Alice@Example.com   local1
example.org         REJECT no thanks
@example.net        catchall
postmaster          root, admin
bob@example.com     OK
  continued value
"""

# Rules Postfix warns about and skips (a $number in a negated rule's result, $0, an
# index past the groups) are among them: both must answer from the other rules.
REGEXP = r"""
/^(.*)@example\.com$/               ${1}@example.net
/^bob\+([^@]+)@/                    OK tag=$1
/^mailer-daemon@/i                  DISCARD
!/^zz/                              never $1
/^(sub)\.(.*)$/                     BAD $3
!/@/                                local-only
/^x@(spam)\.example$/               REJECT $1 is not welcome
if /example\.org$/
/^(sub)\./                          SUB $0
/^(sub)\./                          SUB $1
endif
"""

CIDR = """\
10.1.0.0/16     REJECT inside
10.0.0.0/8      OK
192.168.7.8     DUNNO
1.2.3.4/32      550 listed
"""

ALIASES = """\
# aliases(5)
postmaster: root
root: admin, "|/bin/true"
Team: alice,
  bob
"quoted name": carol
mailer-daemon: postmaster
"""


@pytest.fixture(scope="module")
def postfix_tools():
    if not FETCH.exists():
        pytest.skip("tests/fetch-postfix-tools.sh is missing")
    proc = subprocess.run(["bash", str(FETCH)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"Debian's postfix package unavailable: {proc.stderr.strip()}")
    root = Path(proc.stdout.strip())
    if not (root / "usr/sbin/postmap").exists():
        pytest.skip("the postfix package has no postmap")
    return root


@pytest.fixture
def tables(tmp_path, workdir):
    conf = tmp_path / "conf"
    conf.mkdir()
    # postmap reads main.cf; rostmap finds its default_database_type there too.
    # Postfix's commands refuse to run when mail_owner or setgid_group does not exist:
    # name the test session's (the workdir fixture creates them), since Postfix itself
    # and its postfix user are not installed here.
    (conf / "main.cf").write_text(f"queue_directory = {tmp_path}/q\ncompatibility_level = 3.6\n"
                                  f"mail_owner = {harness.MAIL_OWNER}\n"
                                  f"setgid_group = {harness.SETGID_GROUP}\n")
    for name, text in [("hash", HASH), ("regexp", REGEXP), ("cidr", CIDR),
                       ("aliases", ALIASES)]:
        (conf / name).write_text(text)
    return conf


def run_postfix(tools, prog, conf, args, keys):
    env = dict(os.environ, LD_LIBRARY_PATH=str(tools / "usr/lib/postfix"))
    proc = subprocess.run([str(tools / "usr/sbin" / prog), "-c", str(conf), *args],
                          input="\n".join(keys) + "\n", capture_output=True, text=True, env=env)
    return proc


def run_ours(prog, conf, args, keys):
    # rostalias is the rostmap binary called by that name.
    exe = BIN / "rostmap"
    return subprocess.run([prog, "-c", str(conf), *args], executable=str(exe),
                          input="\n".join(keys) + "\n", capture_output=True, text=True)


def answers(out):
    return sorted(l for l in out.splitlines() if l.strip())


@pytest.mark.parametrize("kind,build", [("hash", True), ("btree", True), ("texthash", False),
                                        ("regexp", False), ("cidr", False)])
def test_rostmap_q_equals_postmap_q(postfix_tools, tables, kind, build):
    source = tables / ("hash" if kind in ("hash", "btree", "texthash") else kind)
    spec = f"{kind}:{source}"
    if build:
        assert run_postfix(postfix_tools, "postmap", tables, [spec], []).returncode == 0
        built = run_ours("rostmap", tables, [spec], [])
        assert built.returncode == 0, built.stderr
    theirs = run_postfix(postfix_tools, "postmap", tables, ["-q", "-", spec], KEYS)
    ours = run_ours("rostmap", tables, ["-q", "-", spec], KEYS)
    assert theirs.returncode in (0, 1), theirs.stderr
    assert answers(ours.stdout) == answers(theirs.stdout), (ours.stderr, theirs.stderr)
    assert answers(theirs.stdout), "the keys must hit something"
    # Single-key -q: same answer and the same exit status (0 found, 1 not found).
    for key in ["alice@example.com", "nobody@nowhere.example", "10.1.2.3"]:
        t = run_postfix(postfix_tools, "postmap", tables, ["-q", key, spec], [])
        o = run_ours("rostmap", tables, ["-q", key, spec], [])
        assert (o.returncode, o.stdout) == (t.returncode, t.stdout), (key, o.stderr, t.stderr)


def test_rostalias_q_equals_postalias_q(postfix_tools, tables):
    spec = f"hash:{tables / 'aliases'}"
    assert run_postfix(postfix_tools, "postalias", tables, [spec], []).returncode == 0
    built = run_ours("rostalias", tables, [spec], [])
    assert built.returncode == 0, built.stderr
    keys = ["postmaster", "root", "team", "TEAM", "quoted name", "mailer-daemon", "nobody"]
    theirs = run_postfix(postfix_tools, "postalias", tables, ["-q", "-", spec], keys)
    ours = run_ours("rostalias", tables, ["-q", "-", spec], keys)
    assert answers(ours.stdout) == answers(theirs.stdout), (ours.stderr, theirs.stderr)
    assert len(answers(theirs.stdout)) >= 4


def test_alias_table_change_is_used_without_restart(make_instance):
    inst = make_instance(start=False)
    aliases = inst.conf / "aliases2"
    aliases.write_text(f"team: {USER1}\n")
    inst.cmd("rostmap", "-a", f"hash:{aliases}")
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + f"alias_maps = hash:{aliases}\n"
                    f"alias_database = hash:{aliases}\n")
    inst.start()
    pids = set(inst.pids())

    def send(subject):
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["team@mx.rostfix.test"],
                       f"Subject: {subject}\r\n\r\nx\r\n".encode())

    send("first")
    wait_for(lambda: maildir_messages(USER1), what="the alias to deliver to the first user")
    # Change the table on disk and rebuild it, as an administrator would: no reload.
    aliases.write_text(f"team: {USER2}\n")
    inst.cmd("rostmap", "-a", f"hash:{aliases}")
    # Daemons re-check a table's files at most once a second (crates/maps reload.rs).
    time.sleep(1.2)
    send("second")
    msgs = wait_for(lambda: maildir_messages(USER2), what="the changed alias to be used")
    assert b"Subject: second" in msgs[0][1]
    assert len(maildir_messages(USER1)) == 1
    master = [p for p, name in inst.processes().items() if name == "master"]
    assert master and master[0] in pids, "same master: no restart happened"
    assert "reload" not in inst.log_text()
