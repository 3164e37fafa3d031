"""A private DNS server for the tests: dnsmasq on a free 127.0.0.1 port, answering only
the records a test gives it (no upstream, no /etc/hosts), stopped when the test ends.
smtpd and the smtp client are pointed at it with `rostfix_dns_servers = 127.0.0.1:PORT`.

Records are dnsmasq options, e.g. `--host-record=ok.test,127.0.0.9`,
`--txt-record=ok.test,"v=spf1 -all"`, `--ptr-record=9.0.0.127.in-addr.arpa,ok.test`,
`--mx-host=ok.test,mx.ok.test,10`, `--address=/nx.test/` (NXDOMAIN for the subtree).
They are handed to dnsmasq in a configuration file, not on its command line, because
only there does it honour quotes: a quoted TXT value keeps its commas in one string
(on the command line the quotes are kept as text and every comma starts a new string)."""

import contextlib
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import free_port


@contextlib.contextmanager
def dnsmasq(records, address="127.0.0.1", port=None):
    """Yields the port of a dnsmasq serving `records`; skips the test when dnsmasq is
    not installed (tests/setup-deps.sh installs it). `address` and `port` for a peer
    whose resolver cannot be given a port (the C library's: port 53 on another
    loopback address, with its own resolv.conf)."""
    exe = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if exe is None:
        pytest.skip("dnsmasq not installed (tests/setup-deps.sh)")
    port = port or free_port()
    conf = tempfile.NamedTemporaryFile("w", prefix="dnsmasq-", suffix=".conf")
    conf.write("".join(r.removeprefix("--") + "\n" for r in records))
    conf.flush()
    proc = subprocess.Popen(
        [exe, "--no-daemon", f"--port={port}", f"--listen-address={address}",
         "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root",
         "--pid-file=", "--log-facility=-", f"--conf-file={conf.name}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail("dnsmasq did not start: " + proc.stderr.read().decode(errors="replace"))
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        conf.close()
