"""Network lookup tables against real peers (issue 14): slapd (ldap:), memcached
(memcache:, in front of the LDAP table as its `backup`), and a socketmap and a tcp_table
server written here (Python, netstrings / `get` lines), all on 127.0.0.1 high ports,
started and stopped by the test.

virtual_alias_maps = memcache:(backup ldap:), socketmap:..., tcp:...: mail to each
rewritten address reaches the local users' Maildirs; an LDAP group address expands to
two users; `rostmap -q` answers from every type, and a server's TEMP / 400 reply is a
lookup error, not "not found". Then slapd is stopped: smtpd answers RCPT for an
address not in the cache with 451 (it cannot tell whether it exists), and mail to it
submitted locally is deferred, never bounced, and delivered once slapd is back."""

import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from harness import USER1, USER2, free_port, maildir_messages, wait_for
from smtpsink import ThreadingServer
from peers import make_ca_and_server_cert

SLAPD = "/usr/sbin/slapd"
MEMCACHED = "/usr/bin/memcached"
BIND_PW = "ld4p'secret"
SUFFIX = "dc=rostfix,dc=test"

LDIF = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: rostfix
o: Rostfix test

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,{SUFFIX}
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: alice
cn: Alice
sn: A
mailLocalAddress: alice@corp.test
mailLocalAddress: team@corp.test
mailRoutingAddress: {USER1}@localhost

dn: uid=bob,ou=people,{SUFFIX}
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: bob
cn: Bob
sn: B
mailLocalAddress: bob@corp.test
mailLocalAddress: team@corp.test
mailRoutingAddress: {USER2}@localhost
"""


class Slapd:
    """slapd on 127.0.0.1:port (ldap://); with `certs` (a test CA's directory from
    make_ca_and_server_cert) also ldaps:// on tls_port, and every operation needs TLS
    (`security tls=1`), so a table that does not really use TLS is refused."""

    def __init__(self, certs=None):
        self.dir = Path(tempfile.mkdtemp(prefix="rostfix-slapd-"))
        self.port = free_port()
        self.tls_port = free_port() if certs else None
        self.proc = None
        (self.dir / "db").mkdir()
        schema = "/etc/ldap/schema"
        self.conf = self.dir / "slapd.conf"
        self.conf.write_text(
            "".join(f"include {schema}/{s}.schema\n"
                    for s in ["core", "cosine", "inetorgperson", "misc"]) +
            f"pidfile {self.dir}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f"database mdb\nsuffix \"{SUFFIX}\"\nrootdn \"cn=admin,{SUFFIX}\"\n"
            f"rootpw {BIND_PW}\ndirectory {self.dir}/db\n"
            # Reading needs a bind: the table's bind_dn/bind_pw are exercised.
            f"access to * by dn.exact=\"cn=admin,{SUFFIX}\" read by anonymous auth\n" +
            (f"TLSCACertificateFile {certs}/ca.pem\nTLSCertificateFile {certs}/server.pem\n"
             f"TLSCertificateKeyFile {certs}/server.key\nsecurity tls=1\n" if certs else ""))
        (self.dir / "data.ldif").write_text(LDIF)
        subprocess.run(["slapadd", "-f", self.conf, "-l", self.dir / "data.ldif"],
                       check=True, capture_output=True, timeout=60)
        self.start()

    def start(self):
        urls = f"ldap://127.0.0.1:{self.port}/"
        if self.tls_port:
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        self.proc = subprocess.Popen(
            [SLAPD, "-f", self.conf, "-h", urls, "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            for port in filter(None, (self.port, self.tls_port)):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) != 0:
                        return False
            return True
        wait_for(up, timeout=30, what="slapd to listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Memcached:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-u", "nobody"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(up, timeout=30, what="memcached to listen")

    def get(self, key):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"get {key}\r\n".encode())
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        lines = data.split(b"\r\n")
        return lines[1].decode() if lines[0].startswith(b"VALUE") else None

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


# What the socketmap and tcp servers know. "temp@..." makes them report a failure.
SOCKETMAP = {"sock@other.test": f"{USER2}@localhost"}
TCPMAP = {"tcp user@other.test": f"{USER1}@localhost", "tcp@other.test": f"{USER1}@localhost"}


def read_netstring(f):
    length = b""
    while (c := f.read(1)) not in (b":", b""):
        length += c
        if len(length) > 6:
            return None
    if not length.isdigit():
        return None
    data = f.read(int(length) + 1)
    return data[:-1].decode() if data.endswith(b",") else None


class SocketmapHandler(socketserver.StreamRequestHandler):
    def handle(self):
        while (req := read_netstring(self.rfile)) is not None:
            name, _, key = req.partition(" ")
            if name != "aliases":
                reply = "PERM unknown map"
            elif key.startswith("temp@"):
                reply = "TEMP backend down"
            elif key in SOCKETMAP:
                reply = "OK " + SOCKETMAP[key]
            else:
                reply = "NOTFOUND "
            self.wfile.write(f"{len(reply.encode())}:{reply},".encode())


class TcpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        from urllib.parse import quote, unquote
        for line in self.rfile:
            cmd, _, key = line.decode().strip().partition(" ")
            key = unquote(key)
            if cmd != "get":
                reply = "400 bad command"
            elif key.startswith("temp@"):
                reply = "400 backend%20down"
            elif key in TCPMAP:
                reply = "200 " + quote(TCPMAP[key], safe="@")
            else:
                reply = "500 not%20found"
            self.wfile.write((reply + "\n").encode())


Server = ThreadingServer


@pytest.fixture
def peers():
    if not (os.path.exists(SLAPD) and os.path.exists(MEMCACHED)):
        pytest.skip("slapd/memcached are not installed (tests/setup-deps.sh)")
    slapd, memcached, servers = None, None, []
    try:
        slapd = Slapd()
        memcached = Memcached()
        for handler in (SocketmapHandler, TcpHandler):
            srv = Server(("127.0.0.1", free_port()), handler)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            servers.append(srv)
        yield slapd, memcached, servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        if memcached:
            memcached.close()
        if slapd:
            slapd.close()


def subjects(user):
    return sorted(d.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode()
                  for _, d in maildir_messages(user))


def test_ldap_memcache_socketmap_tcp_tables(make_instance, peers):
    slapd, memcached, sock_port, tcp_port = peers
    inst = make_instance(start=False)
    ldap_cf = inst.conf / "ldap-aliases.cf"
    ldap_cf.write_text(
        f"server_host = 127.0.0.1\nserver_port = {slapd.port}\nversion = 3\n"
        f"search_base = ou=people,{SUFFIX}\n"
        "query_filter = (&(objectClass=inetLocalMailRecipient)(mailLocalAddress=%s))\n"
        "result_attribute = mailRoutingAddress\nbind = yes\n"
        f"bind_dn = cn=admin,{SUFFIX}\nbind_pw = {BIND_PW}\ndomain = corp.test\n"
        "timeout = 5\n")
    mc_cf = inst.conf / "memcache-aliases.cf"
    mc_cf.write_text(f"memcache = inet:127.0.0.1:{memcached.port}\n"
                     f"backup = ldap:{ldap_cf}\nkey_format = valias:%s\nttl = 600\n"
                     "domain = corp.test\n")
    for cf in (ldap_cf, mc_cf):
        os.chmod(cf, 0o644)
    ldap = f"ldap:{ldap_cf}"
    memcache = f"memcache:{mc_cf}"
    sockmap = f"socketmap:inet:127.0.0.1:{sock_port}:aliases"
    tcp = f"tcp:127.0.0.1:{tcp_port}"
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() +
                    "virtual_alias_domains = corp.test, other.test\n"
                    f"virtual_alias_maps = {memcache}, {sockmap}, {tcp}\n")

    # rostmap -q answers from each type; a server's failure is an error, not "not found".
    def q(key, table, check=True):
        return inst.cmd("rostmap", "-q", key, table, check=check)
    assert q("alice@corp.test", ldap).stdout.decode().strip() == f"{USER1}@localhost"
    team = sorted(q("Team@Corp.Test", ldap).stdout.decode().strip().split(","))
    assert team == [f"{USER1}@localhost", f"{USER2}@localhost"]
    assert q("nobody@corp.test", ldap, check=False).returncode == 1
    assert q("alice@elsewhere.test", ldap, check=False).returncode == 1  # domain filter
    assert q("sock@other.test", sockmap).stdout.decode().strip() == f"{USER2}@localhost"
    assert q("tcp user@other.test", tcp).stdout.decode().strip() == f"{USER1}@localhost"
    for table in (sockmap, tcp):
        miss = q("x@other.test", table, check=False)
        assert miss.returncode == 1 and miss.stdout == b"", miss
        err = q("temp@other.test", table, check=False)
        assert err.returncode not in (0, 1) and b"lookup error" in err.stderr, err
    assert memcached.get("valias:bob@corp.test") is None
    assert q("bob@corp.test", memcache).stdout.decode().strip() == f"{USER2}@localhost"
    # The backup's answer is now cached in memcached under key_format's key.
    assert memcached.get("valias:bob@corp.test") == f"{USER2}@localhost"

    inst.start()
    with inst.smtp() as s:
        s.sendmail("sender@example.org", ["team@corp.test"],
                   b"From: sender@example.org\r\nSubject: team\r\n\r\nhi\r\n")
        s.sendmail("sender@example.org", ["sock@other.test", "tcp@other.test"],
                   b"From: sender@example.org\r\nSubject: sock-tcp\r\n\r\nhi\r\n")
    wait_for(lambda: subjects(USER1) == ["sock-tcp", "team"], what=f"{USER1}'s mail")
    wait_for(lambda: subjects(USER2) == ["sock-tcp", "team"], what=f"{USER2}'s mail")

    # slapd goes away: alice@ is not cached. smtpd cannot tell whether she exists
    # (reject_unlisted_recipient looks her up in virtual_alias_maps) and answers
    # 451 4.3.0, never 550, as Postfix does; mail submitted locally waits in the queue,
    # nothing bounces, and it is delivered once slapd is back.
    slapd.stop()
    try:
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail("sender@example.org")
            assert s.rcpt("alice@corp.test") == (
                451, b"4.3.0 <alice@corp.test>: Temporary lookup failure")
        inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-f",
                   "sender@example.org", "alice@corp.test"],
                  input=b"From: sender@example.org\nSubject: outage\n\nhi\n")
        wait_for(lambda: "status=deferred" in inst.log_text(), timeout=60,
                 what="the message to be deferred")
    finally:
        slapd.start()
    inst.cmd("rostqueue", "-f")
    wait_for(lambda: "outage" in subjects(USER1), timeout=60,
             what="the deferred message to be delivered")
    log = inst.log_text()
    assert "status=bounced" not in log, log[-3000:]
    assert BIND_PW not in log


@pytest.fixture
def tls_slapd(workdir):
    if not os.path.exists(SLAPD) or shutil.which("openssl") is None:
        pytest.skip("slapd/openssl are not installed (tests/setup-deps.sh)")
    certs = Path(tempfile.mkdtemp(prefix="rostfix-ldap-ca-", dir=workdir))
    make_ca_and_server_cert(certs)
    slapd = Slapd(certs)
    try:
        yield slapd, certs
    finally:
        slapd.close()
        shutil.rmtree(certs, ignore_errors=True)


def test_ldap_start_tls_and_ldaps(make_instance, tls_slapd):
    """start_tls = yes and ldaps:// against a slapd that refuses every operation
    without TLS, with tls_require_cert / tls_ca_cert_file as ldap_table(5) says; then
    mail is delivered through an alias found over ldaps://."""
    slapd, certs = tls_slapd
    inst = make_instance(start=False)
    common = (f"search_base = ou=people,{SUFFIX}\nversion = 3\n"
              "query_filter = (mailLocalAddress=%s)\nresult_attribute = mailRoutingAddress\n"
              f"bind_dn = cn=admin,{SUFFIX}\nbind_pw = {BIND_PW}\ntimeout = 5\n")

    def table(name, text):
        cf = inst.conf / f"{name}.cf"
        cf.write_text(common + text)
        os.chmod(cf, 0o644)
        return f"ldap:{cf}"

    plain = f"server_host = 127.0.0.1\nserver_port = {slapd.port}\n"
    ldaps = f"server_host = ldaps://127.0.0.1:{slapd.tls_port}\n"
    good_ca = f"tls_require_cert = yes\ntls_ca_cert_file = {certs}/ca.pem\n"
    wrong_ca = f"tls_require_cert = yes\ntls_ca_cert_file = {certs}/self.pem\n"
    answers = {
        # slapd's security tls=1: without TLS the bind is refused.
        table("cleartext", plain): None,
        table("starttls", plain + "start_tls = yes\n" + good_ca): f"{USER1}@localhost",
        table("ldaps", ldaps + good_ca): f"{USER1}@localhost",
        # tls_require_cert = no (the default) checks no certificate, as Postfix.
        table("ldaps-noverify", ldaps + f"tls_ca_cert_file = {certs}/self.pem\n"):
            f"{USER1}@localhost",
        table("starttls-noverify", plain + "start_tls = yes\n"): f"{USER1}@localhost",
        # A certificate from a CA the table does not trust: refused, a lookup error.
        table("starttls-wrongca", plain + "start_tls = yes\n" + wrong_ca): None,
        table("ldaps-wrongca", ldaps + wrong_ca): None,
    }
    for spec, want in answers.items():
        r = inst.cmd("rostmap", "-q", "alice@corp.test", spec, check=False)
        if want is None:
            assert r.returncode not in (0, 1) and b"lookup error" in r.stderr, (spec, r)
        else:
            assert (r.returncode, r.stdout.decode().strip()) == (0, want), (spec, r)

    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + "virtual_alias_domains = corp.test\n"
                    f"virtual_alias_maps = {table('aliases', ldaps + good_ca)}\n")
    inst.start()
    with inst.smtp() as s:
        s.sendmail("sender@example.org", ["bob@corp.test"],
                   b"From: sender@example.org\r\nSubject: over-ldaps\r\n\r\nhi\r\n")
    wait_for(lambda: subjects(USER2) == ["over-ldaps"], what=f"{USER2}'s mail")
    assert BIND_PW not in inst.log_text()
