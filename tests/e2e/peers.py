"""Helpers shared by the smtp client tests: a test CA with a server certificate for
127.0.0.1, and the aiosmtpd peer process (smtp_peer.py) started and stopped."""

import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import free_port

PEER_SCRIPT = Path(__file__).with_name("smtp_peer.py")


def make_ca_and_server_cert(directory):
    """ca.pem (a CA) and server.pem/server.key (signed by it, for IP 127.0.0.1 and
    localhost); self.pem/self.key: a self-signed certificate nobody trusts."""
    d = Path(directory)

    def run(*argv):
        subprocess.run(list(argv), check=True, capture_output=True, cwd=d)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=Rostfix Test CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage=serverAuth\n"
                               "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=untrusted.test", "-keyout", "self.key", "-out", "self.pem")
    return d


def chain_for(certs, host, *more):
    """A certificate for `host` (and the names in `more`) signed by the test CA in
    `certs`, with the CA after it (the chain a server sends), and its key."""
    def run(*argv):
        subprocess.run(list(argv), check=True, capture_output=True, cwd=certs)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}",
        "-keyout", f"{host}.key", "-out", f"{host}.csr")
    sans = ",".join(f"DNS:{n}" for n in (host, *more))
    (certs / f"{host}.cnf").write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{host}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{host}.cnf", "-out", f"{host}.pem")
    chain = certs / f"{host}.chain.pem"
    chain.write_text((certs / f"{host}.pem").read_text() + (certs / "ca.pem").read_text())
    return chain, certs / f"{host}.key"


class Peer:
    """A running smtp_peer.py."""

    def __init__(self, workdir, cert, key, auth=None):
        self.port = free_port()
        self.outdir = Path(workdir) / f"peer-{self.port}"
        self.outdir.mkdir()
        # Debian's interpreter: python3-aiosmtpd is installed for it.
        argv = ["/usr/bin/python3", str(PEER_SCRIPT), str(self.port), str(cert), str(key),
                str(self.outdir)]
        if auth:
            argv += ["--auth", auth]
        self.log = open(self.outdir.with_suffix(".log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("smtp_peer.py exited: "
                                   + self.outdir.with_suffix(".log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("smtp_peer.py did not start listening")

    def messages(self):
        return [p.read_bytes() for p in sorted(self.outdir.glob("*.eml"))]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def certs(workdir, tmp_path_factory):
    pytest.importorskip("aiosmtpd", reason="python3-aiosmtpd not installed (tests/setup-deps.sh)")
    d = tmp_path_factory.mktemp("certs", numbered=True)
    return make_ca_and_server_cert(d)


@pytest.fixture
def start_peer(workdir):
    """Factory: start_peer(cert, key, auth=None) -> Peer; all stopped at the end."""
    started = []

    def factory(cert, key, auth=None):
        p = Peer(workdir, cert, key, auth)
        started.append(p)
        return p

    yield factory
    for p in started:
        p.stop()
