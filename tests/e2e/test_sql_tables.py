"""SQL lookup tables against real servers (issue 14): PostgreSQL 15 and MariaDB from
Debian's packages, started by the test session on high loopback ports with their data
under the session's temporary directory, holding the postfixadmin schema (domain,
mailbox, alias) with two virtual domains.

For each server: virtual_mailbox_domains, virtual_mailbox_maps and virtual_alias_maps
come from SQL (through `proxy:` for the domains, which opens the same table);
mail to both domains is delivered into Maildirs by the virtual agent (and, in the last
test, into Dovecot over LMTP, read back over IMAP), an alias from
SQL expands to two mailboxes, `rostmap -q` answers from the table; then the database
is stopped: mail is deferred (never bounced) and delivered once the database is back."""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import MAIL_OWNER, free_port, stop_process, wait_for

UID, GID = 61101, 61100
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "s3cret'pw"

SCHEMA = [
    "CREATE TABLE domain (domain VARCHAR(255) PRIMARY KEY, active SMALLINT NOT NULL)",
    "CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, maildir VARCHAR(255),"
    " domain VARCHAR(255), active SMALLINT NOT NULL)",
    "CREATE TABLE alias (address VARCHAR(255) PRIMARY KEY, goto TEXT,"
    " domain VARCHAR(255), active SMALLINT NOT NULL)",
    "INSERT INTO domain VALUES ('one.test', 1), ('two.test', 1), ('gone.test', 0)",
    "INSERT INTO mailbox VALUES ('a@one.test', 'one.test/a/', 'one.test', 1),"
    " ('b@two.test', 'two.test/b/', 'two.test', 1)",
    "INSERT INTO alias VALUES ('info@one.test', 'a@one.test,b@two.test', 'one.test', 1),"
    " ('a@one.test', 'a@one.test', 'one.test', 1), ('b@two.test', 'b@two.test', 'two.test', 1)",
]

QUERIES = {
    "domains": "SELECT domain FROM domain WHERE domain='%s' AND active = 1",
    "mailboxes": "SELECT maildir FROM mailbox WHERE username='%s' AND active = 1",
    "aliases": "SELECT goto FROM alias WHERE address='%s' AND active = 1",
}


def run_as(user, argv, **kw):
    return subprocess.run(["runuser", "-u", user, "--", *map(str, argv)], check=True,
                          capture_output=True, timeout=120, **kw)


def server_dir(owner):
    base = Path(tempfile.mkdtemp(prefix="rostfix-sql-"))
    os.chmod(base, 0o755)
    pw = pwd.getpwnam(owner)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    return base


class Postgres:
    kind = "pgsql"

    def __init__(self):
        self.dir = server_dir("postgres")
        self.port = free_port()
        run_as("postgres", [PG_BIN / "initdb", "-D", self.dir / "data", "-U", "postgres",
                            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                            "--no-sync"])
        self.start()
        sql = ["CREATE ROLE rostfix LOGIN PASSWORD 's3cret''pw'", "CREATE DATABASE mail"]
        for stmt in sql:
            self.psql("postgres", stmt)
        for stmt in SCHEMA + ["GRANT SELECT ON ALL TABLES IN SCHEMA public TO rostfix"]:
            self.psql("mail", stmt)

    def psql(self, db, stmt):
        run_as("postgres", [PG_BIN / "psql", "-h", self.dir, "-p", self.port, "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-c", stmt])

    def start(self):
        run_as("postgres", [PG_BIN / "pg_ctl", "-D", self.dir / "data", "-l",
                            self.dir / "log", "-w", "-o",
                            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                            "-c fsync=off", "start"])

    def stop(self):
        run_as("postgres", [PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w",
                            "stop"])

    def cf(self, query):
        return (f"hosts = inet:127.0.0.1:{self.port}\nuser = rostfix\n"
                f"password = {PASSWORD}\ndbname = mail\nquery = {query}\n"
                "retry_interval = 1\nconnect_timeout = 5\n")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Mariadb:
    kind = "mysql"

    def __init__(self):
        self.dir = server_dir("mysql")
        self.port = free_port()
        self.sock = self.dir / "sock"
        self.proc = None
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.dir}/data",
                        "--user=mysql", "--skip-test-db", "--auth-root-authentication-method=socket"],
                       check=True, capture_output=True, timeout=300)
        self.start()
        for stmt in ["CREATE DATABASE mail",
                     "CREATE USER 'rostfix'@'127.0.0.1' IDENTIFIED BY 's3cret''pw'",
                     "GRANT SELECT ON mail.* TO 'rostfix'@'127.0.0.1'"]:
            self.sql(stmt)
        for stmt in SCHEMA:
            self.sql(stmt, db="mail")

    def sql(self, stmt, db=None):
        argv = ["mariadb", "--no-defaults", "-S", str(self.sock), "-uroot", "-e", stmt]
        if db:
            argv.insert(-2, f"--database={db}")
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def start(self):
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.dir}/data", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.sock}", "--user=mysql",
             f"--pid-file={self.dir}/pid", f"--log-error={self.dir}/err.log",
             "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            return subprocess.run(["mariadb", "--no-defaults", "-S", str(self.sock), "-uroot",
                                   "-e", "SELECT 1"], capture_output=True).returncode == 0
        wait_for(ready, timeout=60, what="mariadbd to accept connections")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def cf(self, query):
        return (f"hosts = inet:127.0.0.1:{self.port}\nuser = rostfix\n"
                f"password = {PASSWORD}\ndbname = mail\nquery = {query}\n"
                "retry_interval = 1\nconnect_timeout = 5\n")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pgsql_server():
    if not (PG_BIN / "postgres").exists():
        pytest.skip("postgresql-15 is not installed (tests/setup-deps.sh)")
    server = Postgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mysql_server():
    if shutil.which("mariadbd") is None:
        pytest.skip("mariadb-server is not installed (tests/setup-deps.sh)")
    server = Mariadb()
    yield server
    server.close()


def configure(inst, server):
    base = inst.base / "vmail"
    for dom in ("one.test", "two.test"):
        (base / dom).mkdir(parents=True)
        os.chown(base / dom, UID, GID)
    os.chmod(base, 0o755)
    tables = {}
    for name, query in QUERIES.items():
        cf = inst.conf / f"{server.kind}-{name}.cf"
        cf.write_text(server.cf(query))
        # The password inside: readable by root and the mail owner's group only,
        # as Postfix's documentation asks.
        os.chown(cf, 0, pwd.getpwnam(MAIL_OWNER).pw_gid)
        os.chmod(cf, 0o640)
        tables[name] = f"{server.kind}:{cf}"
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() +
                    f"virtual_mailbox_domains = proxy:{tables['domains']}\n"
                    f"virtual_mailbox_maps = {tables['mailboxes']}\n"
                    f"virtual_alias_maps = {tables['aliases']}\n"
                    f"virtual_mailbox_base = {base}\n"
                    f"virtual_uid_maps = static:{UID}\n"
                    f"virtual_gid_maps = static:{GID}\n"
                    "virtual_minimum_uid = 1000\n")
    return base, tables


def messages(base, mailbox):
    new = base / mailbox / "new"
    return [f.read_text() for f in new.iterdir()] if new.is_dir() else []


def sendmail(inst, rcpt, subject):
    inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-f",
               "sender@example.org", rcpt],
              input=f"From: sender@example.org\nSubject: {subject}\n\nbody\n".encode())


@pytest.mark.parametrize("server_fixture", ["pgsql_server", "mysql_server"])
def test_postfixadmin_virtual_domains_from_sql(make_instance, request, server_fixture):
    server = request.getfixturevalue(server_fixture)
    inst = make_instance(start=False)
    base, tables = configure(inst, server)

    # rostmap -q answers from each table; the quote in a key is escaped, not executed.
    q = inst.cmd("rostmap", "-q", "info@one.test", tables["aliases"])
    assert q.stdout.decode().strip() == "a@one.test,b@two.test"
    q = inst.cmd("rostmap", "-q", "one.test", f"proxy:{tables['domains']}")
    assert q.stdout.decode().strip() == "one.test"
    q = inst.cmd("rostmap", "-q", "x' OR '1'='1", tables["mailboxes"], check=False)
    assert q.returncode == 1 and q.stdout == b"", q

    inst.start()
    with inst.smtp() as s:
        s.sendmail("sender@example.org", ["a@one.test", "b@two.test"],
                   b"From: sender@example.org\r\nSubject: direct\r\n\r\nhi\r\n")
        s.sendmail("sender@example.org", ["info@one.test"],
                   b"From: sender@example.org\r\nSubject: via alias\r\n\r\nhi\r\n")
        # A user no mailbox or alias row names is refused at RCPT, as Postfix's
        # reject_unlisted_recipient does for virtual mailbox domains.
        s.ehlo("client.test")
        s.mail("sender@example.org")
        code, text = s.rcpt("nobody@one.test")
        assert (code, text) == (550, b"5.1.1 <nobody@one.test>: Recipient address "
                                     b"rejected: User unknown in virtual mailbox table")
        s.rset()
    for box in ("one.test/a", "two.test/b"):
        wait_for(lambda box=box: len(messages(base, box)) == 2, what=f"{box}'s Maildir")
        subjects = sorted(re.search(r"Subject: (.*)", m).group(1) for m in messages(base, box))
        assert subjects == ["direct", "via alias"], (box, subjects)

    # The database goes away: smtpd answers RCPT with a temporary error (never
    # "unknown"); mail already queued waits, nothing bounces.
    server.stop()
    try:
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail("sender@example.org")
            code, _ = s.rcpt("a@one.test")
            assert 400 <= code < 500, code
        sendmail(inst, "a@one.test", "during outage")
        wait_for(lambda: re.search(r"to=<a@one\.test>.*status=deferred", inst.log_text()),
                 timeout=60, what="the message to be deferred")
    finally:
        server.start()
    inst.cmd("rostqueue", "-f")
    wait_for(lambda: len(messages(base, "one.test/a")) == 3, timeout=60,
             what="the deferred message to be delivered")
    log = inst.log_text()
    assert "status=bounced" not in log, log[-3000:]
    assert PASSWORD not in log and "s3cret" not in log
    wait_for(lambda: not inst.queue_ids("deferred", "active", "incoming"),
             what="the queue to empty")


def test_postfixadmin_domains_delivered_into_dovecot_over_lmtp(make_instance, pgsql_server,
                                                              workdir):
    """The postfixadmin layout as such servers run it: domains, mailboxes and aliases
    from PostgreSQL, virtual_transport = lmtp to Dovecot, mail read back over IMAP for
    a mailbox of each domain (the alias expands to both)."""
    from test_lmtp import DOVECOT, dovecot_conf
    if not Path("/usr/lib/dovecot/lmtp").exists():
        pytest.skip("dovecot-lmtpd is not installed (tests/setup-deps.sh)")
    import imaplib

    inst = make_instance(start=False)
    configure(inst, pgsql_server)
    socket = inst.queue / "private" / "dovecot-lmtp"
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + "virtual_transport = lmtp:unix:private/dovecot-lmtp\n")
    d = Path(tempfile.mkdtemp(prefix="dovecot-sql-", dir=workdir))
    d.chmod(0o755)
    (d / "mail").mkdir()
    (d / "mail").chmod(0o1777)
    # Dovecot's own user list (username_format=%n: the local part of a@one.test).
    (d / "users").write_text("".join(
        f"{u}:{{PLAIN}}pw-{u}:{UID}:{GID}::{d}/mail/{u}::\n" for u in ("a", "b")))
    imap_port = free_port()
    (d / "dovecot.conf").write_text(dovecot_conf(d, socket, imap_port, UID, GID))
    inst.start()
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(d / "dovecot.conf")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"))
    try:
        wait_for(lambda: socket.exists() or proc.poll() is not None, timeout=20,
                 what="Dovecot's LMTP socket")
        assert proc.poll() is None, (d / "stderr").read_text()
        with inst.smtp() as s:
            s.sendmail("sender@example.org", ["info@one.test"],
                       b"From: sender@example.org\r\nSubject: via sql alias\r\n\r\nhi\r\n")

        def inbox(user):
            imap = imaplib.IMAP4("127.0.0.1", imap_port)
            try:
                imap.login(user, f"pw-{user}")
                imap.select("INBOX", readonly=True)
                _, data = imap.search(None, "ALL")
                return [imap.fetch(n, "(RFC822)")[1][0][1] for n in data[0].split()]
            finally:
                imap.logout()
        for user in ("a", "b"):
            got = wait_for(lambda user=user: inbox(user), timeout=30,
                           what=f"{user}'s mail over IMAP")
            assert b"Subject: via sql alias" in got[0]
        log = inst.log_text()
        assert re.search(r"to=<a@one\.test>, orig_to=<info@one\.test>, relay=.*lmtp.*"
                         r"status=sent", log), log[-3000:]
    finally:
        stop_process(proc, timeout=15)


def test_two_instances_share_virtual_users_in_postgresql(make_instance, pgsql_server):
    """Several Rostfix machines sharing one PostgreSQL (issue 20, docs/operations.md):
    a mailbox added in SQL is accepted by both instances at once, with no reload, and
    a user neither knows is refused by both. The row is removed again at the end (the
    server is shared by the session's tests)."""
    insts = []
    for _ in range(2):
        inst = make_instance(start=False)
        configure(inst, pgsql_server)
        inst.start()
        insts.append(inst)

    def rcpt(inst, address):
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail("sender@example.org")
            return s.rcpt(address)[0]
    assert [rcpt(i, "carol@one.test") for i in insts] == [550, 550]
    pgsql_server.psql("mail", "INSERT INTO mailbox VALUES "
                              "('carol@one.test', 'one.test/carol/', 'one.test', 1)")
    try:
        assert [rcpt(i, "carol@one.test") for i in insts] == [250, 250]
        assert [rcpt(i, "dave@one.test") for i in insts] == [550, 550]
    finally:
        pgsql_server.psql("mail", "DELETE FROM mailbox WHERE username = 'carol@one.test'")
