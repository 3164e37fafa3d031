"""proxy:pgsql: through the proxymap service (issue 14) against a real PostgreSQL 15
(the server of test_sql_tables.py, started once per session).

A chrooted smtpd checks recipients with local_recipient_maps = proxy:pgsql:...: it
cannot read the table's .cf file nor reach the database itself, so every answer comes
through private/proxymap. Under many concurrent SMTP sessions the database sees at
most rostfix_proxymap_pool_size connections (pg_stat_activity); a known user's mail is
delivered, an unknown one is refused with 550, and with the database stopped the
answer is 4xx, never "unknown". rostmap -q answers through proxymap too, and a table
not listed in proxy_read_maps is refused with Postfix's words."""

import smtplib
import threading
import time

from harness import MAIL_OWNER, USER1, maildir_messages, wait_for
from test_sql_tables import PG_BIN, pgsql_server, run_as  # noqa: F401 (fixture)

POOL = 3
SESSIONS = 200
QUERY = "SELECT name FROM localuser WHERE name='%s'"
PROXYMAP = "proxymap  unix  -       -       n       -       1       proxymap\n"


def db_connections(server):
    out = run_as("postgres", [PG_BIN / "psql", "-h", server.dir, "-p", server.port, "-d",
                              "postgres", "-tAc",
                              "SELECT count(*) FROM pg_stat_activity WHERE usename='rostfix'"])
    return int(out.stdout.decode().strip())


def make(make_instance, server):
    for stmt in ["CREATE TABLE IF NOT EXISTS localuser (name VARCHAR(64) PRIMARY KEY)",
                 f"INSERT INTO localuser VALUES ('{USER1}') ON CONFLICT DO NOTHING",
                 "GRANT SELECT ON localuser TO rostfix"]:
        server.psql("mail", stmt)
    inst = make_instance(start=False, master_extra=PROXYMAP, main_extra={
        "default_process_limit": str(SESSIONS + 20),
        "smtpd_client_connection_count_limit": "0",
        "rostfix_proxymap_pool_size": str(POOL),
    })
    cf = inst.conf / "pgsql-users.cf"
    cf.write_text(server.cf(QUERY))
    table = f"pgsql:{cf}"
    with open(inst.conf / "main.cf", "a") as main:
        main.write(f"local_recipient_maps = proxy:{table}\n")
    return inst, table


def session(inst, rcpt, ready, go, results, i):
    try:
        s = smtplib.SMTP("127.0.0.1", inst.port, timeout=120)
        s.ehlo("client.test")
        s.mail("sender@example.org")
        ready.wait(timeout=120)
        go.wait(timeout=120)
        results[i] = s.rcpt(rcpt)[0]
        s.quit()
    except Exception as e:  # noqa: BLE001 (reported by the assertion below)
        results[i] = repr(e)


def test_proxy_pgsql_from_chrooted_smtpd_keeps_connections_at_pool_size(make_instance,
                                                                          pgsql_server):
    server = pgsql_server
    inst, table = make(make_instance, server)
    inst.start()
    known, unknown = f"{USER1}@mx.rostfix.test", "nosuch@mx.rostfix.test"

    # Sessions all open at once, then all ask at once.
    results = [None] * SESSIONS
    ready = threading.Barrier(SESSIONS + 1)
    go = threading.Event()
    threads = [threading.Thread(target=session, args=(inst, known if i % 2 else unknown,
                                                      ready, go, results, i))
               for i in range(SESSIONS)]
    for t in threads:
        t.start()
    ready.wait(timeout=180)
    peak = 0
    go.set()
    while any(t.is_alive() for t in threads):
        peak = max(peak, db_connections(server))
        time.sleep(0.05)
    for t in threads:
        t.join()
    want = [250 if i % 2 else 550 for i in range(SESSIONS)]
    assert results == want, [(i, r) for i, r in enumerate(results) if r != want[i]][:10]
    print(f"peak database connections: {peak} (pool {POOL}, {SESSIONS} sessions)")
    assert 1 <= peak <= POOL, peak
    assert 1 <= db_connections(server) <= POOL
    log = inst.log_text()
    assert "User unknown in local recipient table" in log, log[-3000:]

    # Delivery to the user the database knows.
    with inst.smtp() as s:
        s.sendmail("sender@example.org", [known],
                   b"From: sender@example.org\r\nSubject: via proxymap\r\n\r\nhi\r\n")
    wait_for(lambda: any(b"Subject: via proxymap" in m for _, m in maildir_messages(USER1)),
             what=f"{USER1}'s Maildir")

    # rostmap -q answers through the running proxymap; a table proxy_read_maps does not
    # list is refused there, as Postfix words it.
    q = inst.cmd("rostmap", "-q", USER1, f"proxy:{table}")
    assert q.stdout.decode().strip() == USER1
    q = inst.cmd("rostmap", "-q", "a", "proxy:inline:{a=b}", check=False)
    assert q.returncode != 0
    assert 'proxymap service is not configured for table "inline:{a=b}"' in \
        q.stderr.decode(), q
    wait_for(lambda: 'request for unapproved table: "inline:{a=b}"' in inst.log_text(),
             what="proxymap's warning")

    # The database goes away: a temporary refusal, never "unknown".
    server.stop()
    try:
        with smtplib.SMTP("127.0.0.1", inst.port, timeout=120) as s:
            s.ehlo("client.test")
            s.mail("sender@example.org")
            code, _ = s.rcpt(known)
            assert 400 <= code < 500, code
            code, _ = s.rcpt(unknown)
            assert 400 <= code < 500, code
    finally:
        server.start()
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=120) as s:
        s.ehlo("client.test")
        s.mail("sender@example.org")
        wait_for(lambda: s.rcpt(known)[0] == 250, timeout=30, what="the database back")


PROXYWRITE = "proxywrite unix  -       -       n       -       1       proxymap\n"


def test_proxywrite_writes_proxy_write_maps_and_proxy_read_maps_keeps_braces(make_instance):
    """The proxywrite service (proxymap under that name, as Postfix's master.cf has it)
    really writes the tables of proxy_write_maps: the btree file, in a directory only
    root may enter (as data_directory), is created by proxywrite before it drops
    privileges and changed by it on behalf of a rostmap run as the mail owner, who
    could not write there itself; a table not listed is refused. proxy_read_maps
    keeps an inline:{ a=b, c=d } table whole (split as Postfix splits lists)."""
    inst = make_instance(start=False, master_extra=PROXYMAP + PROXYWRITE)
    data = inst.base / "cache"
    data.mkdir(mode=0o700)
    cache = f"btree:{data}/writable"
    inline = "inline:{ a=b, c=d }"
    with open(inst.conf / "main.cf", "a") as main:
        main.write(f"proxy_write_maps = proxy:{cache}\n"
                   f"proxy_read_maps = proxy:{inline}\n")
    inst.start()

    q = inst.cmd("rostmap", "-q", "c", f"proxy:{inline}")
    assert q.stdout.decode().strip() == "d"

    def as_owner(*args, input=None):
        return inst.cmd("rostmap", *args, user=MAIL_OWNER, input=input, check=False)
    r = as_owner("-i", f"proxy:{cache}", input=b"Key1 value one\nkey2 two\n")
    assert r.returncode == 0, r
    rdb = data / "writable.rdb"
    assert (rdb.stat().st_uid, rdb.stat().st_mode & 0o777) == (0, 0o600)
    # The file itself holds the entries.
    assert inst.cmd("rostmap", "-q", "KEY1", cache).stdout.decode().strip() == "value one"
    assert as_owner("-d", "key1", f"proxy:{cache}").returncode == 0
    assert inst.cmd("rostmap", "-q", "key1", cache, check=False).returncode == 1
    assert as_owner("-d", "key1", f"proxy:{cache}").returncode == 1
    assert inst.cmd("rostmap", "-q", "key2", cache).stdout.decode().strip() == "two"
    # Without proxywrite the mail owner cannot write there.
    direct = as_owner("-i", cache, input=b"k v\n")
    assert direct.returncode != 0, direct

    other = f"btree:{data}/other"
    r = as_owner("-i", f"proxy:{other}", input=b"k v\n")
    assert r.returncode != 0
    assert f'proxywrite service is not configured for table "{other}"' in r.stderr.decode(), r
    assert not (data / "other.rdb").exists()
    wait_for(lambda: "main.cf:proxy_write_maps" in inst.log_text(), what="proxywrite's warning")
