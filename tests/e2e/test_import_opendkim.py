"""`rostconf import` of a Postfix + OpenDKIM site (issue 15): main.cf has
smtpd_milters = inet:127.0.0.1:PORT (non_smtpd_milters = $smtpd_milters), and
opendkim.conf names that Socket with a KeyTable and a refile: SigningTable.

- By default the milter is kept and IMPORT-REPORT says native signing can replace it.
- With --native-dkim, rostfix_dkim_key_table and rostfix_dkim_signing_table point at
  OpenDKIM's own tables, the milter is gone from main.cf, and the report says so.
- An OpenDKIM with a single KeyFile (Domain, Selector, no tables) imported with
  --native-dkim gets a KeyTable and SigningTable written beside main.cf.
- The signature OpenDKIM (Debian's) makes as a milter and the ones Rostfix makes
  natively from both imported settings carry the same d= and s=, and all verify
  (dkimpy) against the one key published in the test dnsmasq."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402
from dns_server import dnsmasq  # noqa: E402
from harness import free_port, wait_for  # noqa: E402
from test_dkim import signature_tags  # noqa: E402
from test_milter import RCPT, _daemon, _delivered, _dns_txt, _txt_chunks  # noqa: E402

SELECTOR = "imported"
DOMAIN = "rostfix.test"


def _opendkim_site(base, port):
    """An OpenDKIM configuration as Debian sites write it, with a fresh key."""
    keys = base / "keys"
    keys.mkdir(parents=True)
    subprocess.run(["opendkim-genkey", "-b", "2048", "-D", str(keys), "-d", DOMAIN,
                    "-s", SELECTOR], check=True)
    (keys / f"{SELECTOR}.private").chmod(0o600)
    (base / "KeyTable").write_text(
        f"{SELECTOR}._domainkey.{DOMAIN} {DOMAIN}:{SELECTOR}:{keys}/{SELECTOR}.private\n")
    (base / "SigningTable").write_text(f"*@{DOMAIN} {SELECTOR}._domainkey.{DOMAIN}\n")
    conf = base / "opendkim.conf"
    conf.write_text(f"""# as on a Debian Postfix site
Syslog no
Mode sv
Socket inet:{port}@localhost
KeyTable {base}/KeyTable
SigningTable refile:{base}/SigningTable
Canonicalization relaxed/simple
# The keys are under the test's directory in /tmp, which OpenDKIM calls unsafe.
RequireSafeKeys false
PidFile {base}/opendkim.pid
""")
    return conf, keys


def _postfix_dir(base, port):
    src = base / "postfix"
    src.mkdir()
    (src / "main.cf").write_text(
        "myhostname = mx.rostfix.test\nmydomain = rostfix.test\n"
        f"smtpd_milters = inet:127.0.0.1:{port}\nnon_smtpd_milters = $smtpd_milters\n"
        "milter_default_action = accept\n")
    (src / "master.cf").write_text(
        "smtp      inet  n       -       y       -       -       smtpd\n"
        "pickup    unix  n       -       y       60      1       pickup\n")
    return src


def _import(src, dst, conf, *flags):
    proc = subprocess.run([str(harness.BIN / "rostconf"), "import", *flags,
                           "--opendkim-conf", str(conf), str(src), str(dst)],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, (dst / "main.cf").read_text()


def _setting(main_cf, name):
    found = re.findall(rf"^{name} = (.*)$", main_cf, re.M)
    return found[-1] if found else None


def _send_and_tags(inst, subject, dns_port):
    import dkim

    with inst.smtp() as s:
        s.ehlo("client.test")
        s.sendmail(f"alice@{DOMAIN}", [RCPT],
                   f"From: alice@{DOMAIN}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{subject}@test>\r\n\r\nSigned for the import test.\r\n")
    data = wait_for(lambda: _delivered(subject), timeout=30, what=f"{subject} delivered")
    message = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert dkim.verify(message, dnsfunc=_dns_txt(dns_port)), data[:2000]
    return signature_tags(data)


def test_import_keeps_opendkim_or_replaces_it_with_the_same_signatures(make_instance, workdir):
    if shutil.which("opendkim", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("opendkim not installed (tests/setup-deps.sh)")
    base = Path(workdir) / "import-opendkim"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    port = free_port()
    conf, keys = _opendkim_site(base, port)
    src = _postfix_dir(base, port)

    report, main_cf = _import(src, base / "kept", conf)
    assert _setting(main_cf, "smtpd_milters") == f"inet:127.0.0.1:{port}", main_cf
    assert _setting(main_cf, "rostfix_dkim_key_table") is None, main_cf
    dkim_section = report.split("DKIM signing (OpenDKIM):", 1)[1]
    assert f"inet:127.0.0.1:{port} in smtpd_milters is OpenDKIM ({conf}" in dkim_section, report
    assert "kept as a milter" in dkim_section and "--native-dkim" in dkim_section, report
    assert (base / "kept" / "IMPORT-REPORT").read_text() == report

    report, main_cf = _import(src, base / "native", conf, "--native-dkim")
    assert _setting(main_cf, "smtpd_milters") is None, main_cf
    assert _setting(main_cf, "non_smtpd_milters") == "$smtpd_milters", main_cf
    key_table = _setting(main_cf, "rostfix_dkim_key_table")
    signing_table = _setting(main_cf, "rostfix_dkim_signing_table")
    assert (key_table, signing_table) == (f"{base}/KeyTable", f"refile:{base}/SigningTable")
    assert "replaced by native signing" in report and "the milter was removed" in report, report
    # The imported main.cf loads and no milter is left in it.
    check = subprocess.run([str(harness.BIN / "rostconf"), "-c", str(base / "native"),
                            "smtpd_milters"], capture_output=True, text=True, timeout=30)
    assert check.stdout.strip() == "smtpd_milters =", (check.stdout, check.stderr)

    # The same key as OpenDKIM's single-key form.
    single_conf = base / "opendkim-single.conf"
    single_conf.write_text(f"Mode sv\nSocket inet:{port}@127.0.0.1\nDomain {DOMAIN}\n"
                           f"Selector {SELECTOR}\nKeyFile {keys}/{SELECTOR}.private\n")
    single = base / "single"
    report, main_cf = _import(src, single, single_conf, "--native-dkim")
    assert "tables written by this import for OpenDKIM's KeyFile" in report, report
    single_settings = {"rostfix_dkim_key_table": _setting(main_cf, "rostfix_dkim_key_table"),
                       "rostfix_dkim_signing_table":
                           _setting(main_cf, "rostfix_dkim_signing_table")}
    assert single_settings == {
        "rostfix_dkim_key_table": f"{single}/opendkim-KeyTable",
        "rostfix_dkim_signing_table": f"refile:{single}/opendkim-SigningTable"}, main_cf
    assert (single / "opendkim-SigningTable").read_text() == \
        f"*@{DOMAIN} {SELECTOR}._domainkey.{DOMAIN}\n"

    exe = shutil.which("opendkim", path="/usr/sbin:/usr/bin")
    chunks = _txt_chunks(keys / f"{SELECTOR}.txt")
    record = f"--txt-record={SELECTOR}._domainkey.{DOMAIN}," + ",".join(chunks)
    with _daemon([exe, "-f", "-x", str(conf)], port, "opendkim"), \
            dnsmasq([record]) as dns_port:
        milter = make_instance(main_extra={"smtpd_milters": f"inet:127.0.0.1:{port}"})
        by_opendkim = _send_and_tags(milter, "via-opendkim", dns_port)
        milter.stop()
        native = make_instance(main_extra={"rostfix_dkim_key_table": key_table,
                                           "rostfix_dkim_signing_table": signing_table})
        by_rostfix = _send_and_tags(native, "via-native", dns_port)
        native.stop()
        from_single = make_instance(main_extra=single_settings)
        by_single = _send_and_tags(from_single, "via-single", dns_port)
    assert (by_rostfix["d"], by_rostfix["s"]) == (by_opendkim["d"], by_opendkim["s"]) \
        == (by_single["d"], by_single["s"]) == (DOMAIN, SELECTOR), \
        (by_opendkim, by_rostfix, by_single)
    assert "DKIM-Signature field added" in native.log_text()
