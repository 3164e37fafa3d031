"""The corpus (issue 13): real public Postfix configurations (tests/corpus/NAME, where
each came from: tests/corpus/SOURCES.md) imported with `rostconf import`, checked, and
started; every smtpd of each (directly or behind postscreen) must answer, accept the
mail the configuration is meant to accept and refuse a relay attempt with Postfix's
reply.

Only what a test must change is changed, and every change is listed below (ADJUST):
listening addresses and ports, paths into the test directory, DNS to the test
dnsmasq, certificates, policy servers that are not Debian packages (a stand-in that
answers DUNNO, asked for real). Features of later issues (SQL/LDAP/socketmap tables:
issue 14, milters: issue 15) are not built yet: `rostfix check` must name each of them
first (asserted), then the start test replaces those lines (listed) with local tables
of the same data. SQL tables (pgsql:, mysql:) are built, but no database server runs
in this test (test_sql_tables.py runs real ones): they become texthash tables too. A case that still fails for a missing
feature is marked xfail(strict=True) naming it, so that it flips when it lands."""

import contextlib
import os
import re
import shutil
import smtplib
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import dns_server  # noqa: E402
import harness  # noqa: E402
from harness import BIN, USER1, free_port, wait_for  # noqa: E402
from smtpsink import ThreadingServer

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DOMAIN = "corpus.test"
HOST = "mx.corpus.test"
OUTSIDE = "127.0.0.2"     # the test's Internet client: outside mynetworks (ADJUST A5)
SENDER = "alice@client.test"

# ADJUST A1: the instance's own directories, accounts and log, as every test has.
INFRA = ["queue_directory", "daemon_directory", "command_directory", "data_directory",
         "maillog_file", "mail_owner", "setgid_group", "service_throttle_time",
         "minimal_backoff_time", "maximal_backoff_time", "queue_run_delay"]

# What each virtual table replaced under ADJUST T holds (file name = parameter).
TABLES = {
    "virtual_mailbox_domains": f"{DOMAIN} OK\n",
    "virtual_mailbox_maps": f"{USER1}@{DOMAIN} {DOMAIN}/{USER1}/\n",
    "virtual_alias_domains": "",
}


@dataclass
class Case:
    name: str
    # Recipient the MX smtpd must take from an outside client.
    accept: str = f"{USER1}@{DOMAIN}"
    # Strings `rostfix check` must print for features of issues 14/15 (asserted).
    check_names: list = field(default_factory=list)
    # Per-case main.cf changes: {param: value} (each explained in `why`).
    main: dict = field(default_factory=dict)
    # master.cf: (regex, replacement) on the imported text.
    master: list = field(default_factory=list)
    why: list = field(default_factory=list)
    # Files written into the configuration directory (the startup scripts of the
    # project write them in production).
    files: dict = field(default_factory=dict)
    # Of those, the ones indexed with rostmap (hash tables).
    hashed: list = field(default_factory=list)
    # Directories the project's containers mount the configuration at: {path: "conf"}
    # rewritten to the test's configuration directory.
    mounts: list = field(default_factory=list)
    # Policy servers the configuration names (check_policy_service targets) that are
    # not packaged here: each is pointed at the test's stand-in (see PolicyStandIn).
    policy: list = field(default_factory=list)
    xfail: str = ""


CASES = [
    Case("debian", accept=f"{USER1}@{DOMAIN}", files={"mailname": f"{DOMAIN}\n"},
         why=["myorigin = /etc/mailname: the file is test data (corpus.test)"]),
    Case("postfix-default", accept=f"{USER1}@{HOST}",
         main={"myhostname": HOST, "mydomain": DOMAIN},
         why=["myhostname/mydomain: the published file leaves them to the system's name"]),
    Case("docker-mailserver",
         files={"vhost": f"{DOMAIN}\n", "virtual": ""},
         why=["vhost and virtual: written by DMS's start scripts; test data"],),
    Case("mailcow",
         # The milters (inet:rspamd:9900) are built now (issue 15); what `rostfix check`
         # must still name is the SQL tables whose definitions the container mounts.
         check_names=["proxy:mysql:/opt/postfix/conf/sql/"],
         mounts=["/opt/postfix/conf"],
         files={"custom_transport.pcre": "", "custom_postscreen_whitelist.cidr": ""},
         main={"smtpd_milters": "", "non_smtpd_milters": "",
               "tls_server_sni_maps": "", "smtpd_sasl_path": "private/auth"},
         why=["/opt/postfix/conf (the container's mount of data/conf/postfix) is the "
              "configuration directory; custom_transport.pcre and "
              "custom_postscreen_whitelist.cidr are created empty at container start",
              "milters emptied (issue 15)", "tls_server_sni_maps: /opt/postfix sni.map "
              "is generated at container start", "smtpd_sasl_path: the dovecot "
              "container's inet socket is not there"],),
    Case("mailu", check_names=[],
         main={"smtpd_milters": "", "smtpd_sasl_type": "dovecot",
               "smtpd_sasl_path": "private/auth"},
         files={"tls_policy.map": "", "transport.map": ""},
         hashed=["tls_policy.map", "transport.map"],
         why=["milters emptied (issue 15)", "socketmap (podop) tables replaced by texthash "
              "(virtual_mailbox_domains: corpus.test, TABLES)",
              "tls_policy.map, transport.map: written (empty) by Mailu's start script",
              "smtpd_sasl_type: Mailu's Cyrus SASL set-up replaced by the dovecot protocol "
              "on an absent socket (Rostfix has no Cyrus SASL; AUTH is not exercised)"],),
    Case("iredmail",
         policy=["inet:127.0.0.1:7777", "inet:127.0.0.1:12340"],
         files={"header_checks": "", "body_checks": "", "sender_access.pcre": "",
                "aliases": ""},
         why=["header_checks/body_checks/sender_access.pcre/aliases: created empty by "
              "iRedMail's installer",
              "check_policy_service on 7777 (iRedAPD) and 12340 (Dovecot quota-status), "
              "not packaged: the stand-in",
              "virtual_mailbox_domains/_maps (mysql): texthash of corpus.test and its "
              "mailbox (TABLES)"],),
    Case("modoboa",
         policy=["inet:127.0.0.1:9999"],
         files={"postscreen_spf_whitelist.cidr": ""},
         why=["postscreen_spf_whitelist.cidr: generated by modoboa's installer; empty",
              "check_policy_service inet:127.0.0.1:9999 (modoboa's policy daemon, not "
              "packaged): the stand-in",
              "smtpd_proxy_filter (amavis before the queue on 10024/10026) removed: no "
              "amavisd-new runs in this test (test_proxy_filter.py runs the before-queue "
              "filter against a real one)",
              "unverified_recipient_defer_code = 250: reject_unverified_recipient's probe "
              "goes to Dovecot's LMTP socket (virtual_transport), absent here, so it stays "
              "deferred; a 2xx code lets such a recipient through, as in Postfix "
              "(test_verify.py runs address verification against a real next hop)"],
         main={"unverified_recipient_defer_code": "250"},
         master=[(r"\n\s+-o smtpd_proxy_filter=\S+", "")],),
    Case("ispconfig",
         policy=["unix:private/quota-status"],
         mounts=["/var/lib/mailman/data"],
         files={"mailname": f"{DOMAIN}\n", "transport-mailman": "", "virtual-mailman": "",
                "header_checks": "", "body_checks": "", "mime_header_checks": "",
                "nested_header_checks": "", "sasl_passwd": ""},
         hashed=["transport-mailman", "virtual-mailman"],
         main={"smtpd_sasl_type": "dovecot", "smtpd_sasl_path": "private/auth"},
         why=["alias_maps: Debian's plus mailman's, replaced by the instance's (A8)",
              "mailman's data directory (not installed) is the configuration directory, "
              "its transport and virtual tables empty",
              "header/body/mime/nested checks and sasl_passwd: created empty by ISPConfig's "
              "installer",
              "smtpd_sasl_type: Cyrus (saslauthd) replaced by the dovecot protocol on an "
              "absent socket (Rostfix has no Cyrus SASL; AUTH is not exercised)",
              "check_policy_service unix:private/quota-status (Dovecot's): the stand-in",
              "virtual_mailbox_domains/_maps (mysql): texthash of corpus.test and its "
              "mailbox (TABLES)"],),
]


@pytest.fixture(scope="module")
def corpus_dns():
    """client.test (the sender's domain) and corpus.test resolve; nothing else."""
    with dns_server.dnsmasq([
            "--host-record=client.test,127.0.0.2",
            f"--host-record={HOST},127.0.0.1",
            f"--mx-host={DOMAIN},{HOST},10"]) as port:
        yield port


class PolicyStandIn:
    """A policy server (Postfix's policy delegation protocol) answering DUNNO to every
    request, in place of daemons that are not Debian packages (iRedAPD, modoboa's
    policy daemon, Dovecot's quota-status service): DUNNO is what each answers for an
    ordinary message to an existing mailbox under quota. It keeps the requests, so the
    test can show smtpd really asked."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                attrs = {}
                for raw in self.rfile:
                    line = raw.decode(errors="replace").rstrip("\n")
                    if line:
                        key, _, value = line.partition("=")
                        attrs[key] = value
                        continue
                    outer.requests.append(attrs)
                    attrs = {}
                    self.wfile.write(b"action=DUNNO\n\n")
                    self.wfile.flush()

        self.server = ThreadingServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def policy_stand_in():
    p = PolicyStandIn()
    yield p
    p.close()


def make_certs(directory):
    d = Path(directory)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={HOST}", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def rostconf_import(source, target):
    proc = subprocess.run([str(BIN / "rostconf"), "import", str(source), str(target)],
                          capture_output=True, env={"PATH": "/usr/bin:/bin", "LANG": "C"},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    return proc.stdout.decode()


def main_settings(text):
    """{param: value} of a main.cf text, continuation lines joined."""
    out, name = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            if not line.strip():
                name = None
            continue
        if line[0] in " \t" and name:
            out[name] += " " + line.strip()
            continue
        key, sep, value = line.partition("=")
        if sep:
            name = key.strip()
            out[name] = value.strip()
    return out


# Tables the corpus cannot serve here: network tables (SQL, LDAP, socketmap, tcp,
# memcache), whose servers only test_sql_tables.py and test_net_tables.py run. They
# become texthash tables (T).
UNSERVED_TYPES = ["mysql", "pgsql", "ldap", "sqlite", "socketmap", "tcp", "memcache"]


def unserved(keep=()):
    """The table references a test replaces: every type above but those in `keep`
    (a test that runs the server keeps its type), optionally behind proxy:."""
    types = "|".join(t for t in UNSERVED_TYPES if t not in keep)
    return re.compile(rf"(?:proxy:)?(?:{types}):[^\s,]+|\$\{{podop\}}\w+")


def adjust(inst, case, certs, dns_port, policy_port=None, keep=()):
    """Applies ADJUST A1..A8 and T to the imported configuration; returns {service
    label: (port, options)} of the smtpd listeners."""
    conf = inst.conf
    harness_main = main_settings((conf / "main.cf.pre-import").read_text())
    for name in ["main.cf", "master.cf"]:
        t = (conf / name).read_text()
        for mount in case.mounts:
            t = t.replace(mount, str(conf))
        for server in case.policy:
            t = t.replace(server, f"inet:127.0.0.1:{policy_port}")
        (conf / name).write_text(t)
    text = (conf / "main.cf").read_text()
    settings = main_settings(text)
    replaced = unserved(keep)
    tables = Path(tempfile.mkdtemp(prefix="tables-", dir=inst.base))
    extra = {k: harness_main[k] for k in INFRA if k in harness_main}
    extra.update({
        "inet_interfaces": "127.0.0.1", "inet_protocols": "ipv4",        # A2
        "mynetworks": "127.0.0.1/32",                                     # A5
        "rostfix_dns_servers": f"127.0.0.1:{dns_port}",                   # A6
        "alias_maps": harness_main["alias_maps"],                         # A8
        "alias_database": harness_main["alias_database"],
    })
    # A7: certificates the configuration names do not exist here.
    for param in ["smtpd_tls_cert_file", "smtp_tls_cert_file"]:
        if settings.get(param):
            extra[param] = str(certs[0])
    for param in ["smtpd_tls_key_file", "smtp_tls_key_file"]:
        if settings.get(param):
            extra[param] = str(certs[1])
    if settings.get("smtpd_tls_chain_files"):
        extra["smtpd_tls_chain_files"] = f"{certs[1]} {certs[0]}"
    for param in ["smtpd_tls_CAfile", "smtp_tls_CAfile"]:
        if settings.get(param):
            extra[param] = str(certs[0])
    # T: tables of types Rostfix lacks (issue 14) become local texthash tables.
    for param, value in settings.items():
        if replaced.search(value):
            table = tables / param
            table.write_text(TABLES.get(param, ""))
            extra[param] = replaced.sub(f"texthash:{table}", value)
    for name, content in case.files.items():
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(content)
    for name in case.hashed:
        inst.cmd("rostmap", f"hash:{conf / name}")
    extra.update(case.main)
    lines = [text, "", "# ---- test adjustments (tests/e2e/test_corpus.py) ----"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    (conf / "main.cf").write_text("\n".join(lines) + "\n")

    master = (conf / "master.cf").read_text()
    for pattern, repl in case.master:
        master = re.sub(pattern, repl, master)
    master = replaced.sub(lambda m: f"texthash:{tables}/empty", master)
    (tables / "empty").write_text("")
    # A3: every inet listener on a free 127.0.0.1 port. Commented-out services stay
    # commented: they are not part of the configuration.
    services = {}
    out = []
    entry = None
    for line in master.splitlines():
        m = re.match(r"^([^#\s]\S*)(\s+)(\S+)(\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+)(\S+)(.*)$",
                     line)
        if m:
            name, kind, command = m.group(1), m.group(3), m.group(5)
            entry = [name, None, command, m.group(6).split()]
            services[(name, kind)] = entry
            if kind == "inet":
                entry[1] = free_port()
                line = f"127.0.0.1:{entry[1]}{m.group(2)}{line[m.start(3):]}"
        elif not line.strip() or line.lstrip().startswith("#") or not line[0].isspace():
            entry = None
        elif entry is not None:
            entry[3].extend(line.split())
        out.append(line)
    # Options are kept as "-o name=value" strings.
    for entry in services.values():
        entry[3] = [f"-o {v}" for k, v in zip(entry[3], entry[3][1:]) if k == "-o"]
    # An smtpd listens directly, or behind postscreen, which hands clients that pass to
    # the `smtpd pass` service: that smtpd's options are the ones that apply.
    listeners = {}
    behind_postscreen = services.get(("smtpd", "pass"), [None, None, None, []])[3]
    for (name, kind), entry in services.items():
        if kind == "inet" and entry[2] == "smtpd":
            listeners[name] = entry
        elif kind == "inet" and entry[2] == "postscreen":
            listeners[name] = [name, entry[1], "postscreen", entry[3] + behind_postscreen]
    (conf / "master.cf").write_text("\n".join(out) + "\n")
    return listeners


def run_check(inst):
    return subprocess.run([str(BIN / "rostfix"), "-c", str(inst.conf), "check"],
                          capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def proxied(cls, header):
    """An SMTP class whose connection starts with a PROXY protocol header, as haproxy's
    send-proxy writes it, before anything else (before TLS on a wrapper-mode port)."""

    class Proxied(cls):
        def _get_socket(self, host, port, timeout):
            sock = socket.create_connection((host, port), timeout, self.source_address)
            sock.sendall(header)
            if cls is smtplib.SMTP_SSL:
                return self.context.wrap_socket(sock, server_hostname=host)
            return sock

    return Proxied


def session(port, options, source=OUTSIDE):
    """An SMTP session to a listener, through TLS when the service asks for it. Behind
    a load balancer (upstream_proxy_protocol = haproxy) the balancer connects from
    127.0.0.1 and names `source` as the client in its PROXY header."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    opts = " ".join(options)
    smtp, smtps = smtplib.SMTP, smtplib.SMTP_SSL
    if "upstream_proxy_protocol=haproxy" in opts:
        header = f"PROXY TCP4 {source} 127.0.0.1 40000 {port}\r\n".encode()
        smtp, smtps = proxied(smtp, header), proxied(smtps, header)
        source = "127.0.0.1"
    if "smtpd_tls_wrappermode=yes" in opts:
        s = smtps("127.0.0.1", port, timeout=30, source_address=(source, 0), context=ctx)
        s.ehlo("client.test")
        return s
    s = smtp("127.0.0.1", port, timeout=30, source_address=(source, 0))
    s.ehlo("client.test")
    if "smtpd_tls_security_level=encrypt" in opts or s.has_extn("starttls"):
        s.starttls(context=ctx)
        s.ehlo("client.test")
    return s


# Postfix's replies to an outside client naming a foreign recipient: the relay check,
# the client list's final reject (submission-like services), or (Mailu, whose client
# list has reject_unknown_recipient_domain) the recipient domain's DNS check first.
RELAY_REFUSALS = (b"Relay access denied", b"Client host rejected: Access denied",
                  b"Recipient address rejected: Domain not found")


POSTSCREEN_RETRY = (450, b"4.3.2 Service currently unavailable")


def check_listener(inst, case, label, port, options, reentry):
    """One session: the re-entry port takes mail from 127.0.0.1; any other refuses an
    outside client's relay attempt (or, a submission port, the unauthenticated MAIL).
    Returns the reply to the relay attempt, if one was made."""
    with session(port, options, source="127.0.0.1" if reentry else OUTSIDE) as s:
        if reentry:
            code, _ = s.mail(SENDER)
            assert code == 250, (label, code)
            assert s.rcpt(case.accept)[0] == 250, (label, inst.log_text()[-3000:])
            return None
        code, msg = s.mail(SENDER)
        if refused(code):
            # A submission service may refuse an unauthenticated client at MAIL.
            assert "submission" in label or "465" in label or "587" in label \
                or "smtps" in label, (label, code, msg, inst.log_text()[-3000:])
            return None
        relay = s.rcpt("victim@far-away.test")
        if relay == POSTSCREEN_RETRY:
            return relay
        assert refused(relay[0]) and any(t in relay[1] for t in RELAY_REFUSALS), \
            (label, relay, inst.log_text()[-3000:])
        s.rset()
        return relay


def refused(code):
    return 400 <= code < 600


def cases():
    for c in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        yield pytest.param(c, id=c.name, marks=marks)


def imported(make_instance, case):
    inst = make_instance(start=False)
    rostconf_import(CORPUS / case.name, inst.conf)
    return inst


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_check_names_what_is_not_built(make_instance, case):
    """Before any adjustment of tables or milters, `rostfix check` names every
    issue-14/15 feature the configuration uses: never silent."""
    inst = imported(make_instance, case)
    proc = run_check(inst)
    out = proc.stdout.decode() + proc.stderr.decode()
    for needle in case.check_names:
        assert needle in out, out[-4000:]
    if not case.check_names:
        # And no false alarm for a configuration that uses none.
        assert "lookups in it fail" not in out, out[-4000:]


@pytest.mark.parametrize("case", list(cases()))
def test_start_accept_and_refuse(make_instance, workdir, corpus_dns, policy_stand_in, case):
    inst = imported(make_instance, case)
    certs = make_certs(tempfile.mkdtemp(prefix="certs-", dir=inst.base))
    listeners = adjust(inst, case, certs, corpus_dns, policy_stand_in.port)
    assert listeners, "no smtpd in master.cf"
    proc = run_check(inst)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()[-4000:]
    # The harness waits on its own port: the first smtpd listener here.
    first = next(iter(listeners.values()))
    inst.port = first[1]
    inst.start()
    for label, (_, port, command, options) in listeners.items():
        opts = " ".join(options)
        reentry = "content_filter=" in opts.replace("content_filter=smtp", "")
        # postscreen's after-220 tests (modoboa enables them) end the first session of
        # a new client with its own 450 4.3.2 however it went, and pass the client
        # the next time, as in Postfix: the second session is smtpd's.
        for _ in range(2 if command == "postscreen" else 1):
            relay = check_listener(inst, case, label, port, options, reentry)
            if relay is None or relay != POSTSCREEN_RETRY:
                break
        else:
            pytest.fail(f"{label}: postscreen did not pass the client the second time")
    # The MX: the first listener named smtp, else the first one.
    mx = listeners.get("smtp", first)
    with session(mx[1], mx[3]) as s:
        assert s.mail(SENDER)[0] == 250, inst.log_text()[-3000:]
        code, msg = s.rcpt(case.accept)
        assert code == 250, (code, msg, inst.log_text()[-3000:])
        code, msg = s.data(b"Subject: corpus\r\n\r\naccepted\r\n")
        assert code == 250, (code, msg, inst.log_text()[-3000:])
    if case.policy:
        # The stand-in was really asked, about the accepted recipient.
        asked = [r.get("recipient") for r in policy_stand_in.requests]
        assert case.accept in asked, policy_stand_in.requests


# ---- the import report, per configuration (issue 16: never silent) ----

# The report sections that list what did not carry over as it was.
REPORTED_SECTIONS = ("Translated:", "Not carried or needing attention:",
                     "Accepted but not implemented by Rostfix")


# The import checks that each table's source exists on the machine it runs on: the
# line for the host's own /etc/aliases comes and goes with the host (a machine that
# ever had Postfix installed has the file), so it is left out of the comparison.
HOST_DEPENDENT = re.compile(r"^table [a-z]+:/etc/aliases: ")


def reported_items(report, conf):
    """The report's bullet lines in the sections above, the import's target folder
    written as $CONF so that the list does not depend on the test's folder."""
    items, keep = [], False
    for line in report.splitlines():
        if line and not line.startswith(" "):
            keep = line.startswith(REPORTED_SECTIONS)
            continue
        if keep and line.lstrip().startswith("- "):
            item = line.strip()[2:].replace(str(conf), "$CONF")
            if not HOST_DEPENDENT.match(item):
                items.append(item)
    return sorted(set(items))


def source_parameters(case_dir):
    """Every main.cf parameter (service None) and master.cf `-o` parameter (with the
    name of its service) the configuration sets."""
    out = {(name, None) for name in main_settings((case_dir / "main.cf").read_text())}
    service = None
    for line in (case_dir / "master.cf").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            service = line.split()[0]
        for m in re.finditer(r"(?:^|\s)-o\s+([A-Za-z0-9_.-]+)=", line):
            if line[:1].isspace():
                out.add((m.group(1), service))
    return out


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_import_reports_each_parameter(tmp_path, case):
    """`rostconf import` reports, per configuration, exactly the list in
    tests/corpus/NAME/EXPECTED-REPORT (what was translated, not carried, or accepted
    without effect), and drops no parameter without a line: each one the source sets is
    still set in the imported files or named in the report. After a change that
    implements a parameter, regenerate with ROSTFIX_UPDATE_EXPECTED=1 and review the
    diff: a line that disappears is a parameter that now works."""
    conf = tmp_path / "conf"
    conf.mkdir()
    report = rostconf_import(CORPUS / case.name, conf)
    assert report == (conf / "IMPORT-REPORT").read_text()
    items = reported_items(report, conf)
    expected_file = CORPUS / case.name / "EXPECTED-REPORT"
    if os.environ.get("ROSTFIX_UPDATE_EXPECTED") == "1":
        expected_file.write_text("".join(i + "\n" for i in items))
    expected = expected_file.read_text().splitlines()
    assert items == expected, "\n".join(
        [f"+ {i}" for i in items if i not in expected]
        + [f"- {i}" for i in expected if i not in items])

    imported_main = main_settings((conf / "main.cf").read_text())
    imported_master = (conf / "master.cf").read_text()
    # A `-o` of a service the import commented out goes with it: the report names
    # the service.
    silent = [(name, service) for name, service in source_parameters(CORPUS / case.name)
              if name not in imported_main
              and not re.search(rf"(?m)^\s+-o\s+{re.escape(name)}=", imported_master)
              and not re.search(rf"\b{re.escape(name)}\b", report)
              and not (service and re.search(
                  rf"(?m)master\.cf: {re.escape(service)}/\S+ .*commented out", report))]
    assert not silent, f"dropped without a line in the report: {silent}"


# ---- iRedMail on its own database (issue 14: the corpus with SQL-backed delivery) ----

# iRedMail's vmail account: virtual_uid_maps = static:2000 in its main.cf.
VMAIL_ID = 2000
VMAIL_PASSWORD = "vmail-pw"
IREDMAIL_USER = f"{USER1}@{DOMAIN}"
IREDMAIL_ALIAS = f"team@{DOMAIN}"


def ensure_vmail():
    """The vmail user and group iRedMail's installer creates (its pipe service runs
    dovecot's deliver as user=vmail:vmail)."""
    import grp
    import pwd
    try:
        grp.getgrnam("vmail")
    except KeyError:
        gid = ["-g", str(VMAIL_ID)]
        if any(g.gr_gid == VMAIL_ID for g in grp.getgrall()):
            gid = ["-r"]
        subprocess.run(["groupadd", *gid, "vmail"], check=True)
    try:
        pwd.getpwnam("vmail")
    except KeyError:
        uid = ["-u", str(VMAIL_ID)]
        if any(p.pw_uid == VMAIL_ID for p in pwd.getpwall()):
            uid = ["-r"]
        subprocess.run(["useradd", *uid, "-g", "vmail", "-M", "-d", "/nonexistent",
                        "-s", "/usr/sbin/nologin", "vmail"], check=True)
    return pwd.getpwnam("vmail")


@pytest.fixture(scope="module")
def iredmail_db():
    """MariaDB with iRedMail's own vmail schema (tests/corpus/iredmail/iredmail.mysql,
    loaded as published) holding one domain, one mailbox and one alias, as iRedAdmin
    would write them."""
    if shutil.which("mariadbd") is None:
        pytest.skip("mariadb-server is not installed (tests/setup-deps.sh)")
    from test_sql_tables import Mariadb
    server = Mariadb()
    try:
        server.sql("CREATE DATABASE vmail")
        schema = (CORPUS / "iredmail" / "iredmail.mysql").read_bytes()
        subprocess.run(["mariadb", "--no-defaults", "-S", str(server.sock), "-uroot", "vmail"],
                       input=schema, check=True, capture_output=True, timeout=120)
        for stmt in [
            f"CREATE USER 'vmail'@'127.0.0.1' IDENTIFIED BY '{VMAIL_PASSWORD}'",
            "GRANT SELECT ON vmail.* TO 'vmail'@'127.0.0.1'",
        ]:
            server.sql(stmt)
        for stmt in [
            f"INSERT INTO domain (domain, transport) VALUES ('{DOMAIN}', 'dovecot')",
            "INSERT INTO mailbox (username, domain, storagebasedirectory, storagenode, maildir)"
            f" VALUES ('{IREDMAIL_USER}', '{DOMAIN}', '/var/vmail', 'vmail1',"
            f" '{DOMAIN}/u/s/e/{USER1}/')",
            "INSERT INTO forwardings (address, forwarding, domain, dest_domain, is_list)"
            f" VALUES ('{IREDMAIL_ALIAS}', '{IREDMAIL_USER}', '{DOMAIN}', '{DOMAIN}', 1)",
        ]:
            server.sql(stmt, db="vmail")
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def iredmail_dovecot(base, vmail):
    """A private Dovecot for deliver (dovecot-lda -d looks the user up through Dovecot's
    auth-userdb socket, as on an iRedMail server): every user of the domain is a
    vmail-owned Maildir under the returned folder. Yields (configuration, folder)."""
    from saslpeer import Dovecot
    folder = tempfile.mkdtemp(prefix="dovecot-", dir=base)
    os.chmod(folder, 0o755)
    dovecot = Dovecot(folder, base, {})
    mail = dovecot.dir / "vmail"
    mail.mkdir()
    os.chown(mail, vmail.pw_uid, vmail.pw_gid)
    dovecot.socket = dovecot.run_dir / "auth-userdb"
    dovecot.conf.write_text(f"""# written by tests/e2e/test_corpus.py
instance_name = rostfix-iredmail-{os.getpid()}
base_dir = {dovecot.run_dir}
state_dir = {dovecot.dir}/state
# deliver runs as vmail: it logs to its stderr (which pipe captures) rather than a
# root-owned file, and may write to the stats listener.
log_path = /dev/stderr
protocols =
ssl = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={vmail.pw_uid} gid={vmail.pw_gid} home={mail}/%d/%n allow_all_users=yes
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0600
    user = vmail
    group = vmail
  }}
}}
""")
    os.chmod(dovecot.conf, 0o644)
    dovecot.start()
    try:
        yield dovecot.conf, mail
    finally:
        dovecot.stop()


def test_iredmail_delivers_from_its_database(make_instance, corpus_dns, policy_stand_in,
                                             iredmail_db):
    with contextlib.ExitStack() as stack:
        iredmail_on_sql(stack, make_instance, corpus_dns, policy_stand_in, iredmail_db)


def iredmail_on_sql(stack, make_instance, corpus_dns, policy_stand_in, iredmail_db):
    """iRedMail's configuration on a real MariaDB with iRedMail's schema: every proxy:mysql
    table is kept (only the placeholders of its .cf files get the test server's address
    and account), the domain, mailbox, alias and per-domain transport come from SQL, and
    mail to the mailbox and to the alias reaches the mailbox through the configuration's
    own `dovecot` pipe service (deliver as vmail). Test changes beyond the start test's:
    content_filter emptied (no amavisd here; test_content_filter.py runs one), deliver
    given a private Dovecot configuration (-c)."""
    vmail = ensure_vmail()
    base_case = next(c for c in CASES if c.name == "iredmail")
    inst = imported(make_instance, base_case)
    conf_dir = inst.conf / "mysql"
    for cf in conf_dir.glob("*.cf"):
        text = cf.read_text()
        for placeholder, value in [
                ("PH_SQL_SERVER_ADDRESS", "127.0.0.1"), ("PH_SQL_SERVER_PORT", str(iredmail_db.port)),
                ("PH_VMAIL_DB_BIND_USER", "vmail"), ("PH_VMAIL_DB_BIND_PASSWD", VMAIL_PASSWORD),
                ("PH_VMAIL_DB_NAME", "vmail")]:
            text = text.replace(placeholder, value)
        cf.write_text(text)
    dovecot_conf, mail = stack.enter_context(iredmail_dovecot(inst.base, vmail))
    from dataclasses import replace
    case = replace(
        base_case,
        main={**base_case.main, "content_filter": ""},
        master=base_case.master + [(r"argv=/usr/lib/dovecot/deliver ",
                                    f"argv=/usr/lib/dovecot/deliver -c {dovecot_conf} ")])
    certs = make_certs(tempfile.mkdtemp(prefix="certs-", dir=inst.base))
    listeners = adjust(inst, case, certs, corpus_dns, policy_stand_in.port, keep=("mysql",))
    main_cf = (inst.conf / "main.cf").read_text()
    assert "proxy:mysql:" in main_cf and "texthash:" not in main_settings(main_cf).get(
        "virtual_mailbox_maps", ""), "the SQL tables must stay SQL tables"
    proc = run_check(inst)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()[-4000:]
    first = next(iter(listeners.values()))
    inst.port = first[1]
    inst.start()
    mx = listeners.get("smtp", first)
    with session(mx[1], mx[3]) as s:
        for rcpt, subject in [(IREDMAIL_USER, "to-mailbox"), (IREDMAIL_ALIAS, "to-alias")]:
            assert s.mail(SENDER)[0] == 250, inst.log_text()[-3000:]
            code, msg = s.rcpt(rcpt)
            assert code == 250, (rcpt, code, msg, inst.log_text()[-3000:])
            code, msg = s.data(f"Subject: {subject}\r\n\r\niredmail\r\n".encode())
            assert code == 250, (code, msg, inst.log_text()[-3000:])
    new = mail / DOMAIN / USER1 / "Maildir" / "new"

    def subjects():
        if not new.is_dir():
            return None
        got = sorted(re.search(rb"Subject: (\S+)", f.read_bytes()).group(1).decode()
                     for f in new.iterdir())
        return got if len(got) == 2 else None

    try:
        got = wait_for(subjects, timeout=60, what="both messages in the vmail Maildir")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{inst.log_text()[-5000:]}") from None
    assert got == ["to-alias", "to-mailbox"]
    for f in new.iterdir():
        assert f.stat().st_uid == vmail.pw_uid
    # The file is in the Maildir before pipe reports back and qmgr logs the line.
    delivered = re.compile(rf"to=<{re.escape(IREDMAIL_USER)}>, orig_to=<{re.escape(IREDMAIL_ALIAS)}>,"
                           r" relay=dovecot, .*status=sent \(delivered via dovecot service\)")
    try:
        wait_for(lambda: delivered.search(inst.log_text()), timeout=30,
                 what="the alias's delivery line")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{inst.log_text()[-4000:]}") from None
    inst.wait_queue_empty()
