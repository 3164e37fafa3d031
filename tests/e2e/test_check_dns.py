"""`rostfix check-dns DOMAIN` (issue 15's DNS readiness check) against a dnsmasq zone:
with every record right it passes; with one record wrong (or missing) at a time it
fails, names that record and prints the one to publish: MX, SPF (evaluated, here
through an include), the DKIM key made by `rostfix dkim-keygen`, DMARC, and PTR with
forward confirmation."""

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import harness
from dns_server import dnsmasq
from test_dkim import keygen

DOMAIN = "example.test"
HOST = "mx.example.test"
IP = "192.0.2.10"


@pytest.fixture(scope="module")
def setup(workdir):
    """The config dir (main.cf, a DKIM key and its KeyTable) and the right records."""
    d = Path(tempfile.mkdtemp(prefix="checkdns-", dir=workdir))
    keys = d / "keys"
    keys.mkdir()
    name, value = keygen(keys, DOMAIN, "sel1", "rsa")
    (d / "KeyTable").write_text(f"sel1._domainkey.{DOMAIN} {DOMAIN}:sel1:{keys}/sel1.private\n")
    good = {
        "mx": f"--mx-host={DOMAIN},{HOST},10",
        "a": f"--address=/{HOST}/{IP}",
        "ptr": f"--ptr-record=10.2.0.192.in-addr.arpa,{HOST}",
        "spf": f"--txt-record={DOMAIN},v=spf1 include:_spf.{DOMAIN} -all",
        "spf-include": f"--txt-record=_spf.{DOMAIN},v=spf1 ip4:192.0.2.0/24 -all",
        "dkim": f"--txt-record={name},{value}",
        "dmarc": f"--txt-record=_dmarc.{DOMAIN},v=DMARC1; p=reject",
    }
    return d, good, value


def check(setup, replace):
    """Runs check-dns with the good records, `replace` ({key: record or None}) applied."""
    d, good, _ = setup
    records = dict(good)
    records.update(replace)
    with dnsmasq([r for r in records.values() if r] + [f"--local=/test/",
                                                       "--local=/2.0.192.in-addr.arpa/"]) as port:
        (d / "main.cf").write_text(
            f"myhostname = {HOST}\n"
            f"rostfix_dns_servers = 127.0.0.1:{port}\n"
            f"rostfix_dkim_key_table = {d}/KeyTable\n")
        p = subprocess.run([str(harness.BIN / "rostfix"), "check-dns", "-c", str(d),
                            "-i", IP, DOMAIN], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def verdicts(out):
    return {m.group(1): m.group(2)
            for m in re.finditer(r"^(MX|SPF|DKIM|DMARC|PTR)\s+(\S+)", out, re.M)}


def test_all_records_right(setup):
    code, out = check(setup, {})
    assert code == 0, out
    assert verdicts(out) == {"MX": "ok", "SPF": "ok", "DKIM": "ok", "DMARC": "ok",
                             "PTR": "ok"}, out
    assert "publish:" not in out


@pytest.mark.parametrize("key, record, name, publish", [
    ("mx", f"--mx-host={DOMAIN},other.example.net,10", "MX",
     f"{DOMAIN}. IN MX 10 {HOST}."),
    ("spf-include", f"--txt-record=_spf.{DOMAIN},v=spf1 ip4:198.51.100.0/24 -all", "SPF",
     f'{DOMAIN}. IN TXT "v=spf1 ip4:{IP} mx -all"'),
    ("spf", None, "SPF", f'{DOMAIN}. IN TXT "v=spf1 ip4:{IP} mx -all"'),
    ("dkim", f"--txt-record=sel1._domainkey.{DOMAIN},v=DKIM1; k=rsa; p=MIIBIjANBgkqh",
     "DKIM", f"sel1._domainkey.{DOMAIN}. IN TXT"),
    ("dmarc", None, "DMARC", f'_dmarc.{DOMAIN}. IN TXT "v=DMARC1; p=none; '
                             f'rua=mailto:postmaster@{DOMAIN}"'),
    ("ptr", "--ptr-record=10.2.0.192.in-addr.arpa,host10.isp.example", "PTR",
     f"10.2.0.192.in-addr.arpa. IN PTR {HOST}."),
])
def test_one_wrong_record_is_named_with_the_right_one(setup, key, record, name, publish):
    code, out = check(setup, {key: record})
    assert code == 1, out
    got = verdicts(out)
    assert got[name] in ("WRONG", "MISSING"), out
    assert all(v == "ok" for k, v in got.items() if k != name), out
    # The line to publish follows the failing check's line.
    lines = out.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith(name) and "ok" not in l.split()[1])
    assert "publish: " + publish in lines[i + 1], out
    if key == "dkim":
        # The whole record, as dkim-keygen printed it.
        assert setup[2][-20:] in out.replace('" "', ""), out
