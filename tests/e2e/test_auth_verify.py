"""Verification on receipt (issue 15): with rostfix_auth_verify = outside, mail from a
client outside mynetworks gets one Authentication-Results header named after
myhostname with SPF (MAIL FROM and HELO), DKIM, ARC and DMARC results, all from TXT
records in the test dnsmasq:

- SPF pass, fail and softfail; a DNS failure is spf=temperror, not a rejection;
- DKIM pass, and fail for a body changed after dkimpy signed it;
- DMARC pass through aligned SPF (relaxed: a subdomain of the From: domain) and
  aligned DKIM, fail under strict alignment and for two registrable domains under one
  public suffix (co.uk: the organisational domain comes from the public suffix list);
- an ARC chain sealed by dkimpy's arc_sign verified (arc=pass);
- an incoming Authentication-Results claiming our name removed;
- OpenDMARC (Debian's opendmarc, as a milter) writes the same dmarc= result and
  header.from for the same messages;
- rostfix_dmarc_reject_policy = yes answers a p=reject failure 550 5.7.1 unless
  rostfix_dmarc_exception_maps lists the domain; reject_spf_fail in
  smtpd_sender_restrictions answers an SPF fail 550 5.7.23;
- ARC sets on the copies local forwards (rostfix_arc_seal_forwarded) and on what a
  listed list manager sends on (rostfix_arc_seal_resubmitted, by sendmail and by
  SMTP AUTH), verified by dkimpy's arc_verify; unlisted submitters are not sealed.

Before this work received mail was not checked at all and no such header was written.

The dnsmasq listens on port 53 of its own loopback address: OpenDMARC resolves with
the C library, which cannot be given a port, so it runs in a mount namespace whose
/etc/resolv.conf names that address."""

import base64
import contextlib
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

import harness
import smtpsink
from dns_server import dnsmasq
from harness import USER1, USER2, free_port, maildir_messages, wait_for
from saslpeer import PASSWORD, write_passwd
from test_milter import _daemon as milter_daemon

RCPT = f"{USER1}@mx.rostfix.test"
CLIENT = "127.0.0.2"
HELO = "client.helo.test"
DNS_ADDR = "127.0.0.153"
ME = "mx.rostfix.test"
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"


def _rsa_key(d, name):
    """A PKCS#1 key (dkimpy signs with it) and its public key in base64 DER."""
    key = Path(d) / f"{name}.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(der).decode()


def _our_key(d):
    """Our key for rostfix.test from `rostfix dkim-keygen`, in OpenDKIM-format tables
    (KeyTable, SigningTable) in `d`; returns the TXT record's name and value."""
    out = subprocess.run([str(harness.BIN / "rostfix"), "dkim-keygen", "-D", str(d),
                          "rostfix.test", "seal"], check=True, capture_output=True,
                         text=True).stdout
    line = next(l for l in out.splitlines() if " IN TXT " in l)
    (Path(d) / "KeyTable").write_text(
        f"seal._domainkey.rostfix.test rostfix.test:seal:{d}/seal.private\n")
    (Path(d) / "SigningTable").write_text("*@rostfix.test seal._domainkey.rostfix.test\n")
    return line.split()[0].rstrip("."), "".join(re.findall(r'"([^"]*)"', line))


def _txt(name, value):
    """A dnsmasq TXT option, the value in character-strings of at most 200 bytes."""
    return f"--txt-record={name}," + ",".join(value[i:i + 200]
                                               for i in range(0, len(value), 200))


@pytest.fixture
def world(workdir):
    """The sender domains' records in a dnsmasq on DNS_ADDR:53; yields the keys."""
    if not Path(PSL).exists():
        pytest.skip("publicsuffix not installed (tests/setup-deps.sh)")
    d = tempfile.mkdtemp(prefix="authverify-", dir=workdir)
    os.chmod(d, 0o755)  # local reads the aliases as mail_owner
    dkim_key, dkim_pub = _rsa_key(d, "pass")
    arc_key, arc_pub = _rsa_key(d, "arc")
    seal_name, seal_txt = _our_key(d)
    spf_ok = "v=spf1 ip4:127.0.0.2 -all"
    records = [
        # Names without records are NXDOMAIN, not REFUSED (no upstream server).
        "--local=/test/", "--local=/uk/",
        _txt("pass.test", spf_ok),
        _txt("mail.pass.test", spf_ok),
        _txt("fail.test", "v=spf1 -all"),
        _txt("soft.test", "v=spf1 ~all"),
        _txt("mail.strict.test", spf_ok),
        _txt("other.co.uk", spf_ok),
        _txt(HELO, spf_ok),
        _txt("_dmarc.pass.test", "v=DMARC1; p=reject"),
        _txt("_dmarc.fail.test", "v=DMARC1; p=reject"),
        _txt("_dmarc.soft.test", "v=DMARC1; p=none"),
        _txt("_dmarc.strict.test", "v=DMARC1; p=quarantine; aspf=s; adkim=s"),
        _txt("_dmarc.shop.co.uk", "v=DMARC1; p=reject"),
        _txt("_dmarc.except.test", "v=DMARC1; p=reject"),
        # pct=0 and test mode (RFC 9989 t=y): a failure is treated one policy lower.
        _txt("_dmarc.sample.test", "v=DMARC1; p=reject; pct=0"),
        _txt("_dmarc.testing.test", "v=DMARC1; p=reject; t=y"),
        _txt("sel._domainkey.pass.test", f"v=DKIM1; k=rsa; p={dkim_pub}"),
        _txt("arc._domainkey.forwarder.test", f"v=DKIM1; k=rsa; p={arc_pub}"),
        _txt(seal_name, seal_txt),
        # The clients' names, for iprev: 127.0.0.2 forward-confirmed, 127.0.0.3 a
        # PTR whose name has no address.
        "--host-record=client.pass.test,127.0.0.2",
        "--ptr-record=3.0.0.127.in-addr.arpa,liar.pass.test",
        # A lookup that fails: forwarded to a closed port (SERVFAIL).
        "--server=/broken.test/127.0.0.1#9",
    ]
    try:
        with dnsmasq(records, address=DNS_ADDR, port=53):
            yield {"dkim": dkim_key, "arc": arc_key, "dir": Path(d)}
    except OSError as e:
        pytest.skip(f"cannot run dnsmasq on {DNS_ADDR}:53: {e}")


def verify_main(**extra):
    main = {
        "rostfix_auth_verify": "outside",
        "rostfix_dns_servers": f"{DNS_ADDR}:53",
        # 127.0.0.2 is outside.
        "mynetworks": "127.0.0.1/32",
        "rostfix_auth_verify_timeout": "10s",
    }
    main.update(extra)
    return main


def message(frm, subject, extra_headers="", body="Checked on receipt.\r\n"):
    return (f"{extra_headers}From: Sender <{frm}>\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@test>\r\nDate: Fri, 04 Dec 2026 18:00:00 +0000\r\n"
            f"\r\n{body * 3}").encode()


def dkim_signed(frm, subject, key, tamper=False):
    import dkim

    msg = message(frm, subject, body="Signed by the sender.\r\n")
    sig = dkim.sign(msg, b"sel", b"pass.test", key, canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    msg = sig + msg
    if tamper:
        msg = msg.replace(b"Signed by the sender.", b"Changed on the way!!!", 1)
    return msg


def arc_sealed(subject, dkim_key, arc_key):
    """A message signed by pass.test, then forwarded and ARC-sealed by forwarder.test
    (its own Authentication-Results is the ARC-Authentication-Results)."""
    import dkim

    msg = dkim_signed("a@pass.test", subject, dkim_key)
    msg = (b"Authentication-Results: forwarder.test; dkim=pass header.d=pass.test\r\n"
           + msg)
    arc = dkim.arc_sign(msg, b"arc", b"forwarder.test", arc_key, b"forwarder.test")
    assert arc, "arc_sign made no ARC set"
    return b"".join(arc) + msg


def send(inst, mail_from, msg, source=CLIENT, helo=HELO, rcpt=RCPT):
    with inst.smtp(source_address=source) as s:
        s.ehlo(helo)
        s.sendmail(mail_from, [rcpt], msg)


def delivered(subject):
    def find():
        for _, data in maildir_messages(USER1):
            if f"Subject: {subject}\n".encode() in data.replace(b"\r\n", b"\n"):
                return data.decode(errors="replace")
        return None
    return wait_for(find, timeout=30, what=f"delivery of {subject}")


def results(data, authserv):
    """The unfolded Authentication-Results fields of `authserv` in the header."""
    head = data.replace("\r\n", "\n").split("\n\n", 1)[0]
    fields = re.findall(r"^Authentication-Results:(.*(?:\n[ \t].*)*)", head, re.M | re.I)
    out = []
    for f in fields:
        text = re.sub(r"\s+", " ", f).strip()
        if text.split(";", 1)[0].strip().lower() == authserv.lower():
            out.append(text)
    return out


def ours(data):
    found = results(data, ME)
    assert len(found) == 1, data[:3000]
    return found[0]


def dmarc_of(ar):
    m = re.search(r"\bdmarc=(\w+)\b.*?header\.from=([\w.-]+)", ar)
    return (m.group(1), m.group(2)) if m else None


# (subject, MAIL FROM, message maker) for the SPF/DKIM/DMARC cases; the maker gets
# the keys of the `world` fixture.
CASES = {
    "spf-pass": ("a@pass.test", lambda k, s: message("a@pass.test", s)),
    "spf-fail": ("a@fail.test", lambda k, s: message("a@fail.test", s)),
    "spf-softfail": ("a@soft.test", lambda k, s: message("a@soft.test", s)),
    "dkim-pass": ("x@soft.test", lambda k, s: dkim_signed("a@pass.test", s, k["dkim"])),
    "dkim-fail": ("x@soft.test",
                  lambda k, s: dkim_signed("a@pass.test", s, k["dkim"], tamper=True)),
    "relaxed": ("bounce@mail.pass.test", lambda k, s: message("a@pass.test", s)),
    "strict": ("bounce@mail.strict.test", lambda k, s: message("a@strict.test", s)),
    "psl": ("bounce@other.co.uk", lambda k, s: message("a@shop.co.uk", s)),
}

# The dmarc= result and header.from each case must get.
EXPECTED_DMARC = {
    "spf-pass": ("pass", "pass.test"),
    "spf-fail": ("fail", "fail.test"),
    "spf-softfail": ("fail", "soft.test"),
    "dkim-pass": ("pass", "pass.test"),
    "dkim-fail": ("fail", "pass.test"),
    "relaxed": ("pass", "pass.test"),
    "strict": ("fail", "strict.test"),
    "psl": ("fail", "shop.co.uk"),
}


def send_cases(inst, keys, tag, helo=HELO):
    subjects = {}
    for name, (mail_from, make) in CASES.items():
        subject = f"{tag}-{name}"
        send(inst, mail_from, make(keys, subject), helo=helo)
        subjects[name] = subject
    return {name: delivered(subject) for name, subject in subjects.items()}


def test_spf_dkim_dmarc_arc_results(make_instance, world):
    inst = make_instance(main_extra=verify_main())
    got = send_cases(inst, world, "av")
    ar = {name: ours(data) for name, data in got.items()}
    assert re.search(r"\bspf=pass\b[^;]*smtp\.mailfrom=pass\.test", ar["spf-pass"])
    assert re.search(rf"\bspf=pass\b[^;]*smtp\.helo={HELO}", ar["spf-pass"])
    assert re.search(r"\bspf=fail\b[^;]*smtp\.mailfrom=fail\.test", ar["spf-fail"])
    assert re.search(r"\bspf=softfail\b[^;]*smtp\.mailfrom", ar["spf-softfail"])
    assert re.search(r"\bdkim=pass\b[^;]*header\.[di]=@?pass\.test", ar["dkim-pass"])
    assert re.search(r"\bdkim=fail\b", ar["dkim-fail"]), ar["dkim-fail"]
    assert re.search(r"\bdkim=none\b", ar["spf-pass"])
    for name, expected in EXPECTED_DMARC.items():
        assert dmarc_of(ar[name]) == expected, (name, ar[name])
    assert "(p=reject dis=none)" in ar["spf-fail"]
    assert "(p=quarantine dis=none)" in ar["strict"]

    # An ARC chain sealed by the forwarder verifies.
    send(inst, "x@soft.test", arc_sealed("av-arc", world["dkim"], world["arc"]))
    arc = ours(delivered("av-arc"))
    assert re.search(r"\barc=pass\b", arc), arc

    # A forged Authentication-Results with our name is removed; another ADMD's stays.
    forged = (f"Authentication-Results: {ME}; dkim=pass header.d=bank.test;\r\n"
              f" dmarc=pass header.from=bank.test\r\n"
              f"Authentication-Results: other.test; spf=pass smtp.mailfrom=bank.test\r\n")
    send(inst, "a@pass.test", message("a@pass.test", "av-forged", extra_headers=forged))
    data = delivered("av-forged")
    assert "bank.test" not in ours(data), data[:3000]
    assert len(results(data, "other.test")) == 1
    assert "removed 1 Authentication-Results header(s) claiming our authserv-id" in \
        inst.log_text()

    # iprev, from the client name smtpd looked up at connect: forward-confirmed, and
    # a PTR name without the address (RFC 8601 2.7.3 fail).
    assert "iprev=pass policy.iprev=127.0.0.2 (client.pass.test)" in ar["spf-pass"], \
        ar["spf-pass"]
    send(inst, "a@soft.test", message("a@soft.test", "av-iprev-fail"), source="127.0.0.3")
    liar = ours(delivered("av-iprev-fail"))
    assert "iprev=fail policy.iprev=127.0.0.3" in liar, liar

    # A DNS failure is a temperror result, and the mail is accepted.
    send(inst, "a@broken.test", message("a@broken.test", "av-temperror"))
    assert re.search(r"\bspf=temperror\b", ours(delivered("av-temperror")))

    # Mail from mynetworks is not verified (outside is the default scope), but a
    # header claiming our name is removed from it too.
    send(inst, "a@pass.test", message("a@pass.test", "av-inside", extra_headers=forged),
         source="127.0.0.1")
    inside = delivered("av-inside")
    assert results(inside, ME) == [], inside[:3000]
    assert len(results(inside, "other.test")) == 1


@contextlib.contextmanager
def opendmarc(workdir):
    """OpenDMARC as a milter: its own SPF check, DKIM results taken from our header
    (as behind OpenDKIM), the Debian public suffix list; yields its port."""
    exe = shutil.which("opendmarc", path="/usr/sbin:/usr/bin")
    if exe is None:
        pytest.skip("opendmarc not installed (tests/setup-deps.sh)")
    d = Path(tempfile.mkdtemp(prefix="opendmarc-", dir=workdir))
    port = free_port()
    (d / "resolv.conf").write_text(f"nameserver {DNS_ADDR}\n")
    (d / "opendmarc.conf").write_text(f"""Socket inet:{port}@127.0.0.1
AuthservID opendmarc.rostfix.test
TrustedAuthservIDs {ME}
PublicSuffixList {PSL}
Syslog false
PidFile {d / 'opendmarc.pid'}
""")
    script = (f"mount --bind {d / 'resolv.conf'} /etc/resolv.conf && "
              f"exec {exe} -f -c {d / 'opendmarc.conf'}")
    with milter_daemon(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       port, "opendmarc"):
        yield port


def test_opendmarc_writes_the_same_dmarc_results(make_instance, world, workdir):
    with opendmarc(workdir) as port:
        inst = make_instance(main_extra=verify_main(
            smtpd_milters=f"inet:127.0.0.1:{port}", milter_default_action="tempfail"))
        got = send_cases(inst, world, "od")
    for name, data in got.items():
        theirs = results(data, "opendmarc.rostfix.test")
        theirs = [dmarc_of(t) for t in theirs if dmarc_of(t)]
        assert len(theirs) == 1, (name, data[:3000], inst.log_text()[-3000:])
        assert dmarc_of(ours(data)) == theirs[0] == EXPECTED_DMARC[name], (name, data[:3000])


def test_dmarc_reject_policy_with_exceptions(make_instance, world, workdir):
    exceptions = Path(world["dir"]) / "dmarc_exceptions"
    exceptions.write_text("except.test yes\n")
    inst = make_instance(main_extra=verify_main(
        rostfix_dmarc_reject_policy="yes",
        rostfix_dmarc_quarantine_policy="yes",
        rostfix_dmarc_exception_maps=f"texthash:{exceptions}"))
    for mail_from, msg in [
            ("a@fail.test", message("a@fail.test", "rj-spf-fail")),
            ("x@soft.test", dkim_signed("a@pass.test", "rj-dkim-fail", world["dkim"],
                                        tamper=True))]:
        with pytest.raises(smtplib.SMTPDataError) as e:
            send(inst, mail_from, msg)
        assert e.value.smtp_code == 550, e.value
        assert e.value.smtp_error.decode().startswith("5.7.1 Rejected by DMARC policy for"), \
            e.value
    log = inst.log_text()
    assert "reject: DATA from" in log and "Rejected by DMARC policy for fail.test" in log, log[-3000:]
    # A p=none failure, an excepted domain and a pass are delivered; a p=quarantine
    # failure is accepted into the hold queue.
    send(inst, "a@soft.test", message("a@soft.test", "rj-none"))
    send(inst, "bounce@mail.strict.test", message("a@strict.test", "rj-quarantine"))
    send(inst, "a@fail.test", message("a@except.test", "rj-except"))
    send(inst, "x@soft.test", dkim_signed("a@pass.test", "rj-pass", world["dkim"]))
    assert dmarc_of(ours(delivered("rj-none"))) == ("fail", "soft.test")
    assert dmarc_of(ours(delivered("rj-except"))) == ("fail", "except.test")
    assert dmarc_of(ours(delivered("rj-pass"))) == ("pass", "pass.test")
    held = inst.queue_ids("hold")
    assert len(held) == 1, (held, inst.log_text()[-3000:])
    assert "DMARC p=quarantine failure of strict.test" in inst.log_text()
    shown = inst.cmd("rostcat", "-h", "-q", held[0]).stdout.decode(errors="replace")
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=strict.test" in shown, shown
    # p=reject with pct=0, and p=reject in test mode: not refused but held, as the
    # next policy down says (RFC 7489 6.6.4); the header keeps the published p=.
    send(inst, "a@fail.test", message("a@sample.test", "rj-pct0"))
    send(inst, "a@fail.test", message("a@testing.test", "rj-testmode"))
    held = [h for h in inst.queue_ids("hold") if h not in held]
    assert len(held) == 2, (held, inst.log_text()[-3000:])
    shown = "".join(inst.cmd("rostcat", "-h", "-q", h).stdout.decode(errors="replace")
                    for h in held)
    for domain in ("sample.test", "testing.test"):
        assert f"dmarc=fail (p=reject dis=quarantine) header.from={domain}" in shown, shown


def test_reject_spf_fail_restriction(make_instance, world):
    inst = make_instance(main_extra=verify_main(
        smtpd_sender_restrictions="reject_spf_fail"))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(inst, "a@fail.test", message("a@fail.test", "sr-fail"))
    code, text = e.value.recipients[RCPT]
    assert code == 550 and text.decode().startswith(
        "5.7.23 <a@fail.test>: Sender address rejected: SPF fail"), text
    # softfail and a DNS failure (temperror) are not rejected.
    send(inst, "a@soft.test", message("a@soft.test", "sr-soft"))
    send(inst, "a@broken.test", message("a@broken.test", "sr-temperror"))
    assert re.search(r"\bspf=softfail\b", ours(delivered("sr-soft")))
    assert re.search(r"\bspf=temperror\b", ours(delivered("sr-temperror")))


def test_forwarded_copy_is_arc_sealed(make_instance, world):
    """An alias forwarding to another site: local puts an ARC set on the copy, made
    with the key the SigningTable gives the alias address; dkimpy's arc_verify
    checks the chain against the key in the dnsmasq."""
    import dkim

    d = world["dir"]
    aliases = d / "aliases"
    aliases.write_text("fwd remote@elsewhere.test\n")  # texthash: postmap form
    port = free_port()
    sink = smtpsink.Sink(port)
    try:
        inst = make_instance(main_extra=verify_main(
            alias_maps=f"texthash:{aliases}", alias_database=f"texthash:{aliases}",
            relayhost=f"[127.0.0.1]:{port}",
            rostfix_arc_seal_forwarded="yes",
            rostfix_dkim_key_table=f"{d}/KeyTable",
            rostfix_dkim_signing_table=f"refile:{d}/SigningTable"))
        send(inst, "x@soft.test", dkim_signed("a@pass.test", "arc-forward", world["dkim"]),
             rcpt="fwd@rostfix.test")
        try:
            got = wait_for(lambda: sink.for_rcpt("remote@elsewhere.test"), timeout=30,
                           what="the forwarded copy")
        except AssertionError:
            raise AssertionError(inst.log_text()[-4000:])
    finally:
        sink.stop()
    data = got[0][2].replace("\n", "\r\n").encode()
    assert data.startswith(b"ARC-Seal: i=1; "), data[:2000]
    assert b"ARC-Authentication-Results: i=1; mx.rostfix.test" in data, data[:3000]
    cv, results, reason = dkim.arc_verify(data, dnsfunc=_dnsmasq_txt())
    assert cv == dkim.CV_Pass, (cv, results, reason, data[:3000])
    # The sender's own signature still verifies after forwarding.
    assert dkim.verify(data, dnsfunc=_dnsmasq_txt())


def test_list_manager_resubmission_is_arc_sealed(make_instance, world, workdir):
    """A list manager sends on mail we received from outside, with a subject tag and a
    footer that break the sender's signature. As a local user listed in
    rostfix_arc_seal_resubmitted (sendmail, pickup) and as a listed SASL login
    (smtpd), its copies leave with an ARC set whose ARC-Authentication-Results hold
    what we found on receipt (dkim=pass), sealed with the key of its envelope sender;
    dkimpy's arc_verify passes the chain. The same message from a local user not
    listed, and from a client in mynetworks that did not log in, leaves unsealed
    (smtpd removes our header from the latter): anyone who can submit can write one."""
    import dkim

    d = world["dir"]
    port = free_port()
    sink = smtpsink.Sink(port)
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    lists = "list-bounces@rostfix.test"
    out = {}
    try:
        inst = make_instance(main_extra=verify_main(
            relayhost=f"[127.0.0.1]:{port}",
            rostfix_arc_seal_resubmitted=USER1,
            rostfix_dkim_key_table=f"{d}/KeyTable",
            rostfix_dkim_signing_table=f"refile:{d}/SigningTable",
            smtpd_sasl_auth_enable="yes", smtpd_sasl_type="rostfix",
            smtpd_sasl_path=str(write_passwd(sasl_dir / "sasl_passwd", {USER1: PASSWORD}))))
        send(inst, "x@soft.test", dkim_signed("a@pass.test", "list-in", world["dkim"]))
        got = delivered("list-in")
        assert re.search(r"\bdkim=pass\b", ours(got)), got[:2000]

        def post(tag):
            head, body = got.replace("\r\n", "\n").split("\n\n", 1)
            head = re.sub(r"^Subject: list-in$", f"Subject: [list] {tag}", head, flags=re.M)
            # The delivery's own fields are not the list's.
            head = "\n".join(l for l in head.split("\n")
                             if not l.startswith(("Return-Path:", "Delivered-To:")))
            return (head + "\n\n" + body + "-- \nTo unsubscribe: list-leave@rostfix.test\n")

        def sendmail(user, tag, rcpt):
            proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-f", lists,
                              rcpt], check=False, user=user, input=post(tag).encode())
            assert proc.returncode == 0, proc.stderr

        sendmail(USER1, "by-pickup", "a1@elsewhere.test")
        sendmail(USER2, "not-listed", "a2@elsewhere.test")
        with inst.smtp() as s:
            s.ehlo("lists.rostfix.test")
            s.sendmail(lists, ["a3@elsewhere.test"], post("mynetworks").replace("\n", "\r\n"))
        with inst.smtp(source_address=CLIENT) as s:
            s.ehlo("lists.rostfix.test")
            s.user, s.password = USER1, PASSWORD
            assert s.auth("PLAIN", s.auth_plain, initial_response_ok=True)[0] == 235
            s.sendmail(lists, ["a4@elsewhere.test"], post("by-smtpd").replace("\n", "\r\n"))
        for n in range(1, 5):
            rcpt = f"a{n}@elsewhere.test"
            found = wait_for(lambda r=rcpt: sink.for_rcpt(r), timeout=30, what=f"mail to {rcpt}")
            out[rcpt] = found[0][2].replace("\n", "\r\n").encode()
    finally:
        sink.stop()
    for rcpt in ("a1@elsewhere.test", "a4@elsewhere.test"):
        data = out[rcpt]
        assert data.startswith(b"ARC-Seal: i=1; "), data[:2000]
        aar = re.search(rb"^ARC-Authentication-Results: i=1; mx\.rostfix\.test; (.*)$", data, re.M)
        assert aar and re.search(rb"\bdkim=pass\b", aar.group(1)), data[:3000]
        assert re.search(rb"^ARC-Seal: .*\bd=rostfix\.test;", data, re.M | re.S), data[:2000]
        cv, results, reason = dkim.arc_verify(data, dnsfunc=_dnsmasq_txt())
        assert cv == dkim.CV_Pass, (rcpt, cv, results, reason, data[:3000])
        # The footer broke the sender's signature: the seal is what vouches for it.
        try:
            assert not dkim.verify(data, dnsfunc=_dnsmasq_txt())
        except dkim.ValidationError:
            pass
    for rcpt in ("a2@elsewhere.test", "a3@elsewhere.test"):
        assert b"ARC-Seal:" not in out[rcpt], out[rcpt][:2000]
    assert f"Authentication-Results: {ME};".encode() not in out["a3@elsewhere.test"]


def _dnsmasq_txt():
    """dkimpy's DNS lookup, asking the test dnsmasq."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [DNS_ADDR]

    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        answer = resolver.resolve(name, "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in answer)
    return lookup
