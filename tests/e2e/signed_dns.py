"""A private DNSSEC-signed DNS for the DANE tests: a root zone "." signed with
ldns-keygen/ldns-signzone (one ECDSA P-256 key), optional unsigned child zones
delegated from it (insecure: the signed root proves they have no DS), all served by
nsd on a free 127.0.0.1 port and stopped when the test ends.

The smtp client validates from the root key: `rostfix_dnssec_trust_anchor` names the
key's DNSKEY file, `rostfix_dns_servers` the nsd port. Records are zone-file lines
with absolute names, e.g. `mx.good.test. IN A 127.0.0.1`."""

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import free_port

NSD = "/usr/sbin/nsd"


def _run(argv, cwd):
    return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=cwd).stdout


@contextlib.contextmanager
def signed_dns(directory, root_records, unsigned=None):
    """Yields (port, anchor_file). `unsigned` maps a child zone name ("plain.test.") to
    its records; each is delegated from the root without a DS record."""
    if not (os.path.exists(NSD) and shutil.which("ldns-signzone") and shutil.which("ldns-keygen")):
        pytest.skip("nsd or ldnsutils not installed (tests/setup-deps.sh)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    unsigned = unsigned or {}
    head = "$TTL 300\n"
    root = [head,
            ". IN SOA ns.root. hostmaster.root. 1 3600 600 86400 300\n",
            ". IN NS ns.root.\n",
            "ns.root. IN A 127.0.0.1\n"]
    root += [r + "\n" for r in root_records]
    zones = ['zone:\n  name: "."\n  zonefile: "root.zone.signed"\n']
    for i, (name, records) in enumerate(unsigned.items()):
        ns = f"ns.{name}"
        root += [f"{name} IN NS {ns}\n", f"{ns} IN A 127.0.0.1\n"]
        body = [head, f"{name} IN SOA {ns} hostmaster.{name} 1 3600 600 86400 300\n",
                f"{name} IN NS {ns}\n", f"{ns} IN A 127.0.0.1\n"] + [r + "\n" for r in records]
        (d / f"child{i}.zone").write_text("".join(body))
        zones.append(f'zone:\n  name: "{name}"\n  zonefile: "child{i}.zone"\n')
    (d / "root.zone").write_text("".join(root))
    key = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "."], d).strip()
    _run(["ldns-signzone", "-f", "root.zone.signed", "root.zone", key], d)
    anchor = d / "root.anchor"
    # The DNSKEY line only (ldns adds a comment after it).
    anchor.write_text((d / f"{key}.key").read_text().split(";")[0].strip() + "\n")
    os.chmod(anchor, 0o644)
    port = free_port()
    (d / "nsd.conf").write_text(
        "server:\n"
        f"  ip-address: 127.0.0.1\n  port: {port}\n  username: \"\"\n"
        f"  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n"
        f"  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n"
        f"  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 1\n"
        "remote-control:\n  control-enable: no\n" + "".join(zones))
    proc = subprocess.Popen([NSD, "-d", "-c", str(d / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        log = d / "nsd.log"
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail("nsd did not start: " + proc.stderr.read().decode(errors="replace"))
            if log.exists() and "nsd started" in log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("nsd did not start in time: " + log.read_text(errors="replace"))
        yield port, anchor
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
