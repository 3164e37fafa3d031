"""Native DKIM signing (issue 15): keys made by `rostfix dkim-keygen`, chosen by the
From: domain through OpenDKIM-format KeyTable and SigningTable files
(rostfix_dkim_key_table, rostfix_dkim_signing_table = refile:...). Mail from
mynetworks, from SASL-authenticated clients and from the local sendmail command
(pickup) is delivered with a DKIM-Signature that dkimpy (python3-dkim) verifies
against the TXT record dkim-keygen printed, for an RSA and an Ed25519 key, and that
OpenDKIM's own verifier (opendkim-testmsg, which asks the system resolver: it runs in
a private network and mount namespace whose /etc/resolv.conf names a dnsmasq on
127.0.0.1:53 serving the records) accepts as well; mail from a
client outside mynetworks to a local user is not signed. A key that group or others
can read stops smtpd at start with the file named.

Before this work both parameters were unknown to Rostfix and mail left unsigned."""

import email.utils
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import harness
from harness import USER1, maildir_messages, wait_for
from saslpeer import PASSWORD, write_passwd

RCPT = f"{USER1}@mx.rostfix.test"
LOGIN = "dkim-user"
RSA_DOMAIN = "rostfix.test"
ED_DOMAIN = "ed.rostfix.test"


def keygen(keys, domain, selector, alg):
    """Runs `rostfix dkim-keygen`; returns (TXT record name, value) as printed."""
    out = subprocess.run([str(harness.BIN / "rostfix"), "dkim-keygen", "-a", alg, "-D",
                          str(keys), domain, selector],
                         check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if " IN TXT " in l)
    name = line.split()[0].rstrip(".")
    value = "".join(re.findall(r'"([^"]*)"', line))
    assert name == f"{selector}._domainkey.{domain}", out
    assert (Path(keys) / f"{selector}.private").stat().st_mode & 0o777 == 0o600
    return name, value


@pytest.fixture
def keys(workdir):
    """Key files, tables, and the TXT records {name: value} they need published."""
    d = Path(tempfile.mkdtemp(prefix="dkim-", dir=workdir))
    records = dict([keygen(d, RSA_DOMAIN, "rsa", "rsa"),
                    keygen(d, ED_DOMAIN, "ed", "ed25519")])
    # As OpenDKIM's docs write them: a KeyTable and a refile: SigningTable.
    (d / "KeyTable").write_text(
        f"rsa._domainkey.{RSA_DOMAIN} {RSA_DOMAIN}:rsa:{d}/rsa.private\n"
        f"ed._domainkey.{ED_DOMAIN} {ED_DOMAIN}:ed:{d}/ed.private\n")
    (d / "SigningTable").write_text(
        f"# From: domain -> key\n*@{RSA_DOMAIN} rsa._domainkey.{RSA_DOMAIN}\n"
        f"*@{ED_DOMAIN} ed._domainkey.{ED_DOMAIN}\n")
    return d, records


def dkim_main(d):
    return {
        "rostfix_dkim_key_table": f"{d}/KeyTable",
        "rostfix_dkim_signing_table": f"refile:{d}/SigningTable",
        # 127.0.0.2 is outside: it signs only after AUTH.
        "mynetworks": "127.0.0.1/32",
    }


@pytest.fixture
def signing(make_instance, keys, workdir):
    d, records = keys
    main = dkim_main(d)
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    main["smtpd_sasl_auth_enable"] = "yes"
    main["smtpd_sasl_type"] = "rostfix"
    main["smtpd_sasl_path"] = str(write_passwd(sasl_dir / "sasl_passwd", {LOGIN: PASSWORD}))
    return make_instance(main_extra=main), records


def dnsfunc(records):
    """dkimpy's DNS lookup answered from the records dkim-keygen printed."""
    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        value = records.get(name.rstrip("."))
        return value.encode() if value is not None else None
    return lookup


def delivered(subject):
    def find():
        for _, data in maildir_messages(USER1):
            if f"Subject: {subject}".encode() in data:
                return data
        return None
    return wait_for(find, timeout=30, what=f"delivery of {subject}")


def message(sender, subject):
    # With a Date: libopendkim (opendkim-testmsg) calls a message without one a
    # syntax error before it looks at the signature.
    return (f"From: Sender <{sender}>\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: <{subject}@test>\r\n\r\n"
            + "Signed natively by Rostfix.\r\n" * 3)


def wire(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def signature_tags(data):
    """The tags of the (single) DKIM-Signature header, unfolded."""
    m = re.search(rb"^DKIM-Signature:(.*?)\n(?![ \t])", data, re.S | re.M | re.I)
    assert m, data[:2000]
    text = re.sub(r"\s+", "", m.group(1).decode())
    return dict(t.split("=", 1) for t in text.split(";") if "=" in t)


def assert_signed(data, records, domain, selector, algorithm):
    import dkim

    assert data.count(b"DKIM-Signature:") == 1, data[:2000]
    tags = signature_tags(data)
    assert (tags["d"], tags["s"], tags["a"], tags["c"]) == (
        domain, selector, algorithm, "relaxed/relaxed"), tags
    # From is oversigned: listed once more than the message has it.
    assert [h.lower() for h in tags["h"].split(":")].count("from") == 2, tags
    assert dkim.verify(wire(data), dnsfunc=dnsfunc(records)), data[:2000]
    # The body is covered: a changed body fails.
    tampered = wire(data).replace(b"Signed natively", b"Signed by someone")
    assert not dkim.verify(tampered, dnsfunc=dnsfunc(records))


# Run inside `unshare -mn`: loopback up, /etc/resolv.conf replaced (in this mount
# namespace only) by one naming 127.0.0.1, dnsmasq there on port 53 with the records,
# then opendkim-testmsg verifying the message on stdin.
TESTMSG_SCRIPT = """
set -u
ip link set lo up
mount --bind "$1" /etc/resolv.conf
shift
dnsmasq --no-daemon --port=53 --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --user=root --pid-file= --log-facility=- "$@" 2>/dev/null &
dns=$!
sleep 0.5
opendkim-testmsg
rc=$?
kill $dns
wait $dns
exit $rc
"""


def opendkim_testmsg(data, records, workdir):
    """opendkim-testmsg's verdict on `data` with `records` in DNS: (exit code, stderr)."""
    if shutil.which("opendkim-testmsg", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("opendkim-testmsg not installed (tests/setup-deps.sh: opendkim-tools)")
    resolv = Path(workdir) / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    options = []
    for name, value in records.items():
        chunks = [value[i:i + 200] for i in range(0, len(value), 200)]
        options.append(f"--txt-record={name}," + ",".join(chunks))
    proc = subprocess.run(["unshare", "-mn", "sh", "-c", TESTMSG_SCRIPT, "testmsg",
                           str(resolv), *options],
                          input=data.replace(b"\r\n", b"\n"), capture_output=True, timeout=60,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return proc.returncode, proc.stderr.decode(errors="replace")


def assert_opendkim_verifies(data, records, workdir):
    code, err = opendkim_testmsg(data, records, workdir)
    assert code == 0 and err == "", err
    tampered = wire(data).replace(b"Signed natively", b"Signed by someone")
    code, err = opendkim_testmsg(tampered, records, workdir)
    assert code != 0 and "dkim_eom(): Bad signature" in err, (code, err)


def test_mynetworks_mail_signed_rsa_and_ed25519(signing, workdir):
    inst, records = signing
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail(f"alice@{RSA_DOMAIN}", [RCPT], message(f"alice@{RSA_DOMAIN}", "rsa-signed"))
        s.sendmail(f"carol@{ED_DOMAIN}", [RCPT], message(f"carol@{ED_DOMAIN}", "ed-signed"))
    rsa, ed = delivered("rsa-signed"), delivered("ed-signed")
    assert_signed(rsa, records, RSA_DOMAIN, "rsa", "rsa-sha256")
    assert_signed(ed, records, ED_DOMAIN, "ed", "ed25519-sha256")
    # OpenDKIM's verifier agrees, for both algorithms.
    assert_opendkim_verifies(rsa, records, workdir)
    assert_opendkim_verifies(ed, records, workdir)
    log = inst.log_text()
    assert f"DKIM-Signature field added (s=rsa, d={RSA_DOMAIN})" in log, log[-3000:]
    assert f"DKIM-Signature field added (s=ed, d={ED_DOMAIN})" in log, log[-3000:]
    # A From: domain without a key: queued unsigned.
    with inst.smtp() as s:
        s.sendmail("dave@elsewhere.test", [RCPT], message("dave@elsewhere.test", "no-key"))
    assert b"DKIM-Signature:" not in delivered("no-key")


def test_authenticated_client_signed_outside_client_not(signing):
    inst, records = signing
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("outside.test")
        # Relayed in from outside to a local user: delivered, never signed, even
        # with a From: we hold a key for.
        s.sendmail(f"alice@{RSA_DOMAIN}", [RCPT], message(f"alice@{RSA_DOMAIN}", "inbound"))
    data = delivered("inbound")
    assert b"DKIM-Signature:" not in data, data[:2000]
    with inst.smtp(source_address="127.0.0.2") as s:
        s.ehlo("laptop.test")
        s.user, s.password = LOGIN, PASSWORD
        code, _ = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
        assert code == 235
        s.sendmail(f"alice@{RSA_DOMAIN}", [RCPT], message(f"alice@{RSA_DOMAIN}", "auth-signed"))
    assert_signed(delivered("auth-signed"), records, RSA_DOMAIN, "rsa", "rsa-sha256")


def test_local_submission_signed_by_pickup(signing, workdir):
    inst, records = signing
    proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-t"],
                     check=False, user=USER1,
                     input=message(f"carol@{ED_DOMAIN}", "pickup-signed").encode())
    assert proc.returncode == 0, proc.stderr
    data = delivered("pickup-signed")
    assert_signed(data, records, ED_DOMAIN, "ed", "ed25519-sha256")
    assert_opendkim_verifies(data, records, workdir)


def test_readable_key_stops_smtpd_with_the_file_named(make_instance, keys):
    d, _ = keys
    key = f"{d}/rsa.private"
    (d / "rsa.private").chmod(0o644)
    inst = make_instance(main_extra=dkim_main(d), start=False)
    # `rostfix check` builds smtpd's settings as smtpd does: it fails naming the key.
    check = inst.cmd("rostfix", "check", check=False)
    assert check.returncode == 1 and key.encode() in check.stderr, check.stderr
    inst.cmd("rostfix", "start", check=False)
    # smtpd exits at start (a connection gets no greeting) with the file named in the
    # log. pickup, which reads the same keys, stops likewise.
    def failed():
        inst.accepting()
        return "smtpd" in inst.log_text() and key in inst.log_text()
    wait_for(failed, timeout=30, what="smtpd start failure naming the key")
    assert not inst.accepting()
    line = next(l for l in inst.log_text().splitlines() if key in l)
    assert "chmod 600" in line and "BEGIN" not in line, line


def test_multiple_signatures_rsa_and_ed25519_on_one_message(make_instance, workdir):
    """rostfix_dkim_multiple_signatures (OpenDKIM's MultipleSignatures): one message
    signed with an RSA and an Ed25519 key of the same domain, both verified by dkimpy
    and by opendkim-testmsg (that without it only the first match signs is a unit test of
    crates/dkim)."""
    import dkim

    d = Path(tempfile.mkdtemp(prefix="dkim-multi-", dir=workdir))
    records = dict([keygen(d, RSA_DOMAIN, "rsa", "rsa"),
                    keygen(d, RSA_DOMAIN, "ed", "ed25519")])
    (d / "KeyTable").write_text(
        f"rsa._domainkey.{RSA_DOMAIN} {RSA_DOMAIN}:rsa:{d}/rsa.private\n"
        f"ed._domainkey.{RSA_DOMAIN} {RSA_DOMAIN}:ed:{d}/ed.private\n")
    (d / "SigningTable").write_text(
        f"*@{RSA_DOMAIN} rsa._domainkey.{RSA_DOMAIN}\n"
        f"*@{RSA_DOMAIN} ed._domainkey.{RSA_DOMAIN}\n")
    main = dkim_main(d)
    main["rostfix_dkim_multiple_signatures"] = "yes"
    inst = make_instance(main_extra=main)
    with inst.smtp() as s:
        s.sendmail(f"alice@{RSA_DOMAIN}", [RCPT], message(f"alice@{RSA_DOMAIN}", "two-sigs"))
    data = delivered("two-sigs")
    assert data.count(b"DKIM-Signature:") == 2, data[:3000]
    msg = wire(data)
    checker = dkim.DKIM(msg)
    algorithms = set()
    for idx in (0, 1):
        assert checker.verify(idx=idx, dnsfunc=dnsfunc(records)), (idx, data[:3000])
        algorithms.add(checker.signature_fields[b"a"].decode())
        tampered = msg.replace(b"Signed natively", b"Signed by someone")
        # DKIM.verify raises on a body hash mismatch where dkim.verify answers False.
        try:
            ok = dkim.DKIM(tampered).verify(idx=idx, dnsfunc=dnsfunc(records))
        except dkim.ValidationError:
            ok = False
        assert not ok, idx
    assert algorithms == {"rsa-sha256", "ed25519-sha256"}, algorithms
    assert_opendkim_verifies(data, records, workdir)
    log = inst.log_text()
    for selector in ("rsa", "ed"):
        assert f"DKIM-Signature field added (s={selector}, d={RSA_DOMAIN})" in log, log[-3000:]
