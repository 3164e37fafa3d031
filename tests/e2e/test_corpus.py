"""The corpus (issue 13): real public Postfix configurations (tests/corpus/NAME, where
each came from: tests/corpus/SOURCES.md) imported with `rostconf import`, checked, and
started; every smtpd of each must answer, accept the mail the configuration is meant
to accept and refuse a relay attempt.

Only what a test must change is changed, and every change is listed below (ADJUST):
listening addresses and ports, paths into the test directory, DNS to the test
dnsmasq, certificates. Features of later issues (SQL/LDAP/socketmap tables: issue 14,
milters: issue 15) are not built yet: `rostfix check` must name each of them first
(asserted), then the start test replaces those lines (listed) with local tables.
Cases that fail because another part of issue 13 is not merged yet are marked
xfail(strict=True) with the feature they need, so that they flip when it lands."""

import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import dns_server  # noqa: E402
import harness  # noqa: E402
from harness import BIN, USER1, free_port  # noqa: E402

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
    xfail: str = ""


# Postfix's postscreen is not part of Rostfix: the port-25 service becomes smtpd, as
# an administrator without postscreen would write it.
POSTSCREEN_TO_SMTPD = (r"(?m)^#(smtp\s+inet\s+\S+\s+\S+\s+\S+\s+\S+\s+)\S+(\s+)postscreen",
                       r"\1-\2smtpd")

CASES = [
    Case("debian", accept=f"{USER1}@{DOMAIN}", files={"mailname": f"{DOMAIN}\n"},
         why=["myorigin = /etc/mailname: the file is test data (corpus.test)"]),
    Case("postfix-default", accept=f"{USER1}@{HOST}",
         main={"myhostname": HOST, "mydomain": DOMAIN},
         why=["myhostname/mydomain: the published file leaves them to the system's name"]),
    Case("docker-mailserver",
         master=[(r"(?m)^#(smtp\s+inet\s+n\s+-\s+n\s+-\s+)1(\s+)postscreen", r"\1-\2smtpd")],
         files={"vhost": f"{DOMAIN}\n", "virtual": ""},
         why=["postscreen on port 25 replaced by smtpd (no postscreen in Rostfix)",
              "vhost and virtual: written by DMS's start scripts; test data"],
         xfail="needs reject_unauth_pipelining, reject_authenticated_sender_login_mismatch "
               "(helpers P/D) and smtpd_discard_ehlo_keywords (helper S)"),
    Case("mailcow",
         check_names=["type mysql is not implemented", "smtpd_milters"],
         mounts=["/opt/postfix/conf"],
         files={"custom_transport.pcre": "", "custom_postscreen_whitelist.cidr": ""},
         master=[(r"(?m)^#(smtp\s+inet\s+n\s+-\s+n\s+-\s+)1(\s+)postscreen", r"\1-\2smtpd")],
         main={"smtpd_milters": "", "non_smtpd_milters": "",
               "tls_server_sni_maps": "", "postscreen_access_list": "permit_mynetworks",
               "smtpd_sasl_path": "private/auth"},
         why=["postscreen on port 25 replaced by smtpd",
              "/opt/postfix/conf (the container's mount of data/conf/postfix) is the "
              "configuration directory; custom_transport.pcre and "
              "custom_postscreen_whitelist.cidr are created empty at container start",
              "milters emptied (issue 15)", "tls_server_sni_maps: /opt/postfix sni.map "
              "is generated at container start", "smtpd_sasl_path: the dovecot "
              "container's inet socket is not there"],
         xfail="needs check_recipient_mx_access, reject_unlisted_sender, "
               "reject_authenticated_sender_login_mismatch (helpers P/D)"),
    Case("mailu", check_names=["type socketmap is not implemented", "smtpd_milters"],
         main={"smtpd_milters": "", "smtpd_sasl_type": "dovecot",
               "smtpd_sasl_path": "private/auth"},
         files={"tls_policy.map": "", "transport.map": ""},
         hashed=["tls_policy.map", "transport.map"],
         why=["milters emptied (issue 15)", "socketmap (podop) tables replaced by texthash",
              "tls_policy.map, transport.map: written (empty) by Mailu's start script",
              "smtpd_sasl_type: Mailu's Cyrus SASL set-up replaced by the dovecot protocol "
              "on an absent socket (Rostfix has no Cyrus SASL; AUTH is not exercised)"],
         xfail="needs check_sasl_access and reject_authenticated_sender_login_mismatch "
               "(helpers P/D)"),
    Case("iredmail", check_names=["type mysql is not implemented"],
         files={"header_checks": "", "body_checks": "", "sender_access.pcre": "",
                "aliases": ""},
         why=["header_checks/body_checks/sender_access.pcre/aliases: created empty by "
              "iRedMail's installer"],
         xfail="needs check_policy_service (iRedAPD), reject_unknown_helo_hostname, "
               "reject_unauth_pipelining (helpers P/D)"),
    Case("modoboa", check_names=["type pgsql is not implemented"],
         files={"postscreen_spf_whitelist.cidr": ""},
         master=[(r"(?m)^#(smtp\s+inet\s+n\s+-\s+-\s+-\s+)1(\s+)postscreen", r"\1-\2smtpd")],
         why=["postscreen on port 25 replaced by smtpd",
              "postscreen_spf_whitelist.cidr: generated by modoboa's installer; empty"],
         xfail="needs check_policy_service and reject_unauth_pipelining (helpers P/D)"),
    Case("ispconfig", check_names=["type mysql is not implemented"],
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
              "absent socket (Rostfix has no Cyrus SASL; AUTH is not exercised)"],
         xfail="needs smtpd_restriction_classes, check_policy_service (quota-status) "
               "and check_sender_access with regexp tables as ISPConfig uses them "
               "(helpers P/D)"),
]


@pytest.fixture(scope="module")
def corpus_dns():
    """client.test (the sender's domain) and corpus.test resolve; nothing else."""
    with dns_server.dnsmasq([
            "--host-record=client.test,127.0.0.2",
            f"--host-record={HOST},127.0.0.1",
            f"--mx-host={DOMAIN},{HOST},10"]) as port:
        yield port


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


UNSUPPORTED = re.compile(r"(?:proxy:)?(?:mysql|pgsql|ldap|sqlite|socketmap|tcp|memcache)"
                         r":[^\s,]+|\$\{podop\}\w+")


def adjust(inst, case, certs, dns_port):
    """Applies ADJUST A1..A8 and T to the imported configuration; returns {service
    label: (port, options)} of the smtpd listeners."""
    conf = inst.conf
    harness_main = main_settings((conf / "main.cf.pre-import").read_text())
    for name in ["main.cf", "master.cf"]:
        t = (conf / name).read_text()
        for mount in case.mounts:
            t = t.replace(mount, str(conf))
        (conf / name).write_text(t)
    text = (conf / "main.cf").read_text()
    settings = main_settings(text)
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
        if UNSUPPORTED.search(value):
            table = tables / param
            table.write_text(TABLES.get(param, ""))
            extra[param] = UNSUPPORTED.sub(f"texthash:{table}", value)
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
    master = UNSUPPORTED.sub(lambda m: f"texthash:{tables}/empty", master)
    (tables / "empty").write_text("")
    # A3: every inet listener on a free 127.0.0.1 port.
    listeners = {}
    out = []
    entry = None
    for line in master.splitlines():
        m = re.match(r"^(\S+)(\s+inet\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+)(\S+)(.*)$", line)
        if m:
            port = free_port()
            entry = [m.group(1), port, m.group(3), []]
            if m.group(3) == "smtpd":
                listeners[m.group(1)] = entry
            line = f"127.0.0.1:{port}{m.group(2)}{m.group(3)}{m.group(4)}"
        elif not line.strip() or line.lstrip().startswith("#") or not line[0].isspace():
            entry = None
        elif entry is not None:
            entry[3].append(line.strip())
        out.append(line)
    (conf / "master.cf").write_text("\n".join(out) + "\n")
    return listeners


def run_check(inst):
    return subprocess.run([str(BIN / "rostfix"), "-c", str(inst.conf), "check"],
                          capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def session(port, options, source=OUTSIDE):
    """An SMTP session to a listener, through TLS when the service asks for it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    opts = " ".join(options)
    if "smtpd_tls_wrappermode=yes" in opts:
        s = smtplib.SMTP_SSL("127.0.0.1", port, timeout=30, source_address=(source, 0),
                             context=ctx)
        s.ehlo("client.test")
        return s
    s = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0))
    s.ehlo("client.test")
    if "smtpd_tls_security_level=encrypt" in opts or s.has_extn("starttls"):
        s.starttls(context=ctx)
        s.ehlo("client.test")
    return s


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
def test_start_accept_and_refuse(make_instance, workdir, corpus_dns, case):
    inst = imported(make_instance, case)
    certs = make_certs(tempfile.mkdtemp(prefix="certs-", dir=inst.base))
    listeners = adjust(inst, case, certs, corpus_dns)
    assert listeners, "no smtpd in master.cf"
    proc = run_check(inst)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()[-4000:]
    # The harness waits on its own port: the first smtpd listener here.
    first = next(iter(listeners.values()))
    inst.port = first[1]
    inst.start()
    for label, (_, port, _, options) in listeners.items():
        opts = " ".join(options)
        reentry = "content_filter=" in opts.replace("content_filter=smtp", "")
        with session(port, options, source="127.0.0.1" if reentry else OUTSIDE) as s:
            if reentry:
                # The after-queue filter's way back in: mail from 127.0.0.1 is taken.
                code, _ = s.mail(SENDER)
                assert code == 250, (label, code)
                assert s.rcpt(case.accept)[0] == 250, (label, inst.log_text()[-3000:])
                continue
            code, msg = s.mail(SENDER)
            if refused(code):
                # A submission service may refuse an unauthenticated client at MAIL.
                assert "submission" in label or "465" in label or "587" in label \
                    or "smtps" in label, (label, code, msg, inst.log_text()[-3000:])
                continue
            relay = s.rcpt("victim@far-away.test")
            assert refused(relay[0]), (label, relay, inst.log_text()[-3000:])
            s.rset()
    # The MX: the first listener named smtp, else the first one.
    mx = listeners.get("smtp", first)
    with session(mx[1], mx[3]) as s:
        assert s.mail(SENDER)[0] == 250, inst.log_text()[-3000:]
        code, msg = s.rcpt(case.accept)
        assert code == 250, (code, msg, inst.log_text()[-3000:])
        code, msg = s.data(b"Subject: corpus\r\n\r\naccepted\r\n")
        assert code == 250, (code, msg, inst.log_text()[-3000:])
