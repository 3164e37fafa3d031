"""MTA-STS in the smtp client (issue 17, RFC 8461), all on loopback: dnsmasq
(tests/e2e/dns_server.py) serves the MX, `_mta-sts` TXT and `mta-sts.DOMAIN` address
records; nginx (Debian package) serves the policies over HTTPS with a certificate of a
test CA made here (rostfix_mta_sts_CAfile, rostfix_mta_sts_https_port); the next hop
is an aiosmtpd peer with STARTTLS whose certificate, from the same CA, names only
mx.enf.test. The mtasts service fetches and caches the policies.

Shown: enforce with a good certificate delivers Verified; enforce with a wrong name,
or through a proxy that strips STARTTLS (tests/e2e/starttls_strip.py), defers and
nothing is sent (not even in the clear); enforce skips an MX host outside
the policy; testing delivers and logs the failure; the cached policy is enforced
after a restart with nginx stopped (no second fetch); a 10 MB policy and a policy
host that never answers cost a bounded time and the mail goes out as without
MTA-STS; DANE wins over an enforced policy (a signed zone served by nsd,
tests/e2e/signed_dns.py, with a TLSA record for a self-signed peer)."""

import re
import shutil
import socket
import subprocess
import time

import pytest

from dns_server import dnsmasq
from harness import USER1, USER2, free_port, stop_process, wait_for
from peers import certs, chain_for, start_peer  # noqa: F401 (fixtures)
from signed_dns import signed_dns
from starttls_strip import Listener, StarttlsStripper
from test_dane import spki_sha256

NGINX = shutil.which("nginx", path="/usr/sbin:/usr/bin")
pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (tests/setup-deps.sh)"),
]

MTASTS_SERVICE = "mtasts    unix  -       -       n       -       1       mtasts\n"

# domain -> policy body (None: no policy file; mta-sts.slow.test hangs instead).
POLICIES = {
    "enf.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.enf.test\r\nmax_age: 86400\r\n",
    "wrong.test": "version: STSv1\nmode: enforce\nmx: *.wrong.test\nmax_age: 86400\n",
    "nomatch.test": "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n",
    "tst.test": "version: STSv1\nmode: testing\nmx: mx.tst.test\nmax_age: 86400\n",
    "big.test": "version: STSv1\nmode: enforce\nmx: mx.big.test\nmax_age: 86400\n"
                + "x: " + "y" * (10 * 1024 * 1024) + "\n",
    "slow.test": None,
}


class Nginx:
    """nginx serving https://mta-sts.DOMAIN/.well-known/mta-sts.txt for each of
    `policies` (domain -> body; None: no file) on 127.0.0.1:port."""

    def __init__(self, base, cert, key, port, policies=POLICIES):
        self.base = base
        www = base / "www"
        for domain, body in policies.items():
            if body is not None:
                d = www / f"mta-sts.{domain}" / ".well-known"
                d.mkdir(parents=True)
                (d / "mta-sts.txt").write_text(body)
        (base / "tmp").mkdir()
        self.access = base / "access.log"
        conf = base / "nginx.conf"
        conf.write_text(f"""
user root;
daemon off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {self.access};
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {www}/$host;
    }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(base),
                                      "-e", str(base / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: " + self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def requests(self):
        try:
            return self.access.read_text().splitlines()
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            stop_process(self.proc, timeout=10)


@pytest.fixture
def sts(workdir, certs, start_peer):
    """The peer, DNS, nginx and the hanging host; yields a dict of them."""
    peer_chain, peer_key = chain_for(certs, "mx.enf.test")
    peer = start_peer(peer_chain, peer_key)
    https_chain, https_key = chain_for(
        certs, *[f"mta-sts.{d}" for d, body in POLICIES.items() if body is not None])
    https_port = free_port()
    report_port = free_port()
    records = ["--host-record=reports.enf.test,127.0.0.1"]
    for domain in POLICIES:
        records += [f"--mx-host={domain},mx.{domain},10",
                    f"--host-record=mx.{domain},127.0.0.1",
                    f"--txt-record=_mta-sts.{domain},v=STSv1; id=20261204a;"]
        # SMTP TLS reporting (test_tls_reporting.py): reports to a local user, and for
        # enf.test also by https POST.
        https_rua = (f",https://reports.enf.test:{report_port}/v1/tlsrpt"
                     if domain == "enf.test" else "")
        # Quoted: dnsmasq splits an unquoted value into TXT strings at each comma.
        records.append(f"--txt-record=_smtp._tls.{domain},"
                       f'"v=TLSRPTv1; rua=mailto:{USER1}@mx.rostfix.test{https_rua}"')
        ip = "127.0.0.2" if domain == "slow.test" else "127.0.0.1"
        records.append(f"--host-record=mta-sts.{domain},{ip}")
    base = workdir / f"nginx-{https_port}"
    base.mkdir()
    # mta-sts.slow.test: accepts and then never says a word.
    hanging = Listener("127.0.0.2", https_port, lambda client: None)
    nginx = Nginx(base, https_chain, https_key, https_port)
    try:
        with dnsmasq(records) as dns_port:
            yield {"peer": peer, "dns_port": dns_port, "https_port": https_port,
                   "nginx": nginx, "ca": certs / "ca.pem", "base": base,
                   "certs": certs, "report_port": report_port}
    finally:
        nginx.stop()
        hanging.close()


def instance_for(make_instance, sts, workdir, ports=None, main_extra=None, master_extra=""):
    """An instance with MTA-STS on, routing each test domain to the peer (or to the
    port `ports` gives for it); `main_extra`/`master_extra` add settings."""
    ports = ports or {}
    transport = sts["base"] / "transport"
    transport.write_text("".join(f"{d} smtp:{d}:{ports.get(d, sts['peer'].port)}\n"
                                 for d in POLICIES))
    return make_instance(master_extra=MTASTS_SERVICE + master_extra, main_extra={
        **(main_extra or {}),
        "transport_maps": f"texthash:{transport}",
        "smtp_tls_security_level": "may",
        "smtp_tls_CAfile": str(sts["ca"]),
        "smtp_tls_loglevel": "1",
        "rostfix_dns_servers": f"127.0.0.1:{sts['dns_port']}",
        "rostfix_mta_sts_enable": "yes",
        "rostfix_mta_sts_CAfile": str(sts["ca"]),
        "rostfix_mta_sts_https_port": str(sts["https_port"]),
        "rostfix_mta_sts_fetch_timeout": "3s",
    })


def send(inst, domain, subject):
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [f"{USER2}@{domain}"],
                   f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def deferred_line(domain, reason, dsn="4.7.5"):
    return re.compile(rf"to=<{USER2}@{re.escape(domain)}>, relay=\S+, .*dsn={re.escape(dsn)}, "
                      rf"status=deferred \({re.escape(reason)}\)")


def test_enforce_with_a_good_certificate_delivers_verified(make_instance, sts, workdir):
    a = instance_for(make_instance, sts, workdir)
    send(a, "enf.test", "enforced")
    msgs = wait_for(sts["peer"].messages, timeout=30, what="delivery to the peer")
    assert b"tls=yes" in msgs[0] and b"Subject: enforced" in msgs[0]
    wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
    log = a.log_text()
    assert "enf.test: MTA-STS policy id 20261204a fetched: mode enforce, max_age 86400" in log, log
    assert re.search(rf"Verified TLS connection established to mx\.enf\.test\[127\.0\.0\.1\]:"
                     rf"{sts['peer'].port}: TLSv1\.[23]", log), log


def test_enforce_with_a_wrong_name_defers_and_sends_nothing(make_instance, sts, workdir):
    a = instance_for(make_instance, sts, workdir)
    send(a, "wrong.test", "must not leave")
    reason = ("Server certificate not verified "
              "(MTA-STS policy of wrong.test requires verified TLS)")
    wait_for(lambda: deferred_line("wrong.test", reason).search(a.log_text()), timeout=30,
             what="the deferral")
    assert sts["peer"].messages() == []


def test_enforce_with_starttls_stripped_defers_and_sends_nothing(make_instance, sts, workdir):
    proxy = StarttlsStripper(sts["peer"].port)
    try:
        a = instance_for(make_instance, sts, workdir, ports={"enf.test": proxy.port})
        send(a, "enf.test", "must not go in clear")
        reason = ("TLS is required, but was not offered by host mx.enf.test[127.0.0.1] "
                  "(MTA-STS policy of enf.test requires verified TLS)")
        wait_for(lambda: deferred_line("enf.test", reason, "4.7.4").search(a.log_text()),
                 timeout=30, what="the deferral")
        assert proxy.connections >= 1
        assert sts["peer"].messages() == []
    finally:
        proxy.close()


def test_enforce_skips_an_mx_host_outside_the_policy(make_instance, sts, workdir):
    a = instance_for(make_instance, sts, workdir)
    send(a, "nomatch.test", "wrong mx")
    reason = "MX host mx.nomatch.test does not match the MTA-STS policy of nomatch.test"
    wait_for(lambda: deferred_line("nomatch.test", reason).search(a.log_text()), timeout=30,
             what="the deferral")
    assert sts["peer"].messages() == []


def test_testing_mode_delivers_and_logs_the_failure(make_instance, sts, workdir):
    a = instance_for(make_instance, sts, workdir)
    send(a, "tst.test", "testing")
    msgs = wait_for(sts["peer"].messages, timeout=30, what="delivery to the peer")
    assert b"Subject: testing" in msgs[0]
    wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
    assert re.search(r"MTA-STS policy testing of tst\.test: mx\.tst\.test\[127\.0\.0\.1\]: "
                     r"Trusted TLS connection: certificate not verified for mx\.tst\.test; "
                     r"delivering anyway", a.log_text()), a.log_text()


def test_cached_policy_is_enforced_after_a_restart_without_nginx(make_instance, sts, workdir):
    a = instance_for(make_instance, sts, workdir)
    reason = ("Server certificate not verified "
              "(MTA-STS policy of wrong.test requires verified TLS)")
    send(a, "wrong.test", "first")
    wait_for(lambda: deferred_line("wrong.test", reason).search(a.log_text()), timeout=30,
             what="the first deferral")
    assert len(sts["nginx"].requests()) == 1
    a.stop()
    sts["nginx"].stop()
    before = len(a.log_text())
    a.start()
    send(a, "wrong.test", "second")
    # Both messages (the first is retried) are deferred by the cached policy; without
    # it they would go out over unverified TLS.
    wait_for(lambda: len(deferred_line("wrong.test", reason).findall(a.log_text()[before:])) >= 2,
             timeout=40, what="both deferrals after the restart")
    assert "fetch failed" not in a.log_text()[before:]
    assert sts["peer"].messages() == []


def test_huge_or_silent_policy_hosts_cost_bounded_time(make_instance, sts, workdir):
    a = instance_for(make_instance, sts, workdir)
    started = time.time()
    send(a, "big.test", "big policy")
    send(a, "slow.test", "slow policy host")
    wait_for(lambda: len(sts["peer"].messages()) == 2, timeout=40, what="both deliveries")
    # The smtp client would give up on the service after 28s: far less shows the
    # fetch itself was bounded (3s).
    assert time.time() - started < 20
    log = wait_for(lambda: a.log_text().count("status=sent") == 2 and a.log_text(),
                   what="both delivery log lines")
    assert re.search(r"big\.test: MTA-STS policy fetch failed: \S+: answer larger than 65536 "
                     r"bytes", log), log
    assert re.search(r"slow\.test: MTA-STS policy fetch failed: \S+: timed out after 3s", log), log


def test_dane_wins_over_an_enforced_policy(make_instance, workdir, certs, start_peer):
    # The enforced policy does not list the MX host (and the peer's certificate is
    # self-signed): applied on top of DANE it would skip the host and defer the mail.
    peer = start_peer(certs / "self.pem", certs / "self.key")
    https_port = free_port()
    https_chain, https_key = chain_for(certs, "mta-sts.dane.test")
    records = ["dane.test. IN MX 10 mx.dane.test.",
               "mx.dane.test. IN A 127.0.0.1",
               f"_{peer.port}._tcp.mx.dane.test. IN TLSA 3 1 1 {spki_sha256(certs / 'self.pem')}",
               '_mta-sts.dane.test. IN TXT "v=STSv1; id=1;"',
               "mta-sts.dane.test. IN A 127.0.0.1"]
    base = workdir / f"nginx-{https_port}"
    base.mkdir()
    policy = "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n"
    nginx = Nginx(base, https_chain, https_key, https_port, {"dane.test": policy})
    try:
        with signed_dns(workdir / f"dns-{peer.port}", records) as (dns_port, anchor):
            a = make_instance(master_extra=MTASTS_SERVICE, main_extra={
                "relayhost": f"dane.test:{peer.port}",
                "smtp_tls_security_level": "dane",
                "smtp_dns_support_level": "dnssec",
                "rostfix_dns_servers": f"127.0.0.1:{dns_port}",
                "rostfix_dnssec_trust_anchor": str(anchor),
                "smtp_tls_loglevel": "1",
                "rostfix_mta_sts_enable": "yes",
                "rostfix_mta_sts_CAfile": str(certs / "ca.pem"),
                "rostfix_mta_sts_https_port": str(https_port),
            })
            send(a, "b.test", "dane first")
            msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
            assert b"Subject: dane first" in msgs[0]
            wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
            log = a.log_text()
            assert "dane.test: MTA-STS policy id 1 fetched: mode enforce" in log, log
            assert re.search(r"Verified TLS connection established to mx\.dane\.test"
                             r"\[127\.0\.0\.1\]", log), log
    finally:
        nginx.stop()
