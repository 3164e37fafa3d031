"""Client rate limits and connection counts shared by two Rostfix instances through one
Redis server (issue 20, rostfix_anvil_redis_server): a client that uses up its
connection rate on the first instance is refused by the second; with Redis stopped both
go on with their own limits and say so, and shared limits come back with Redis. A client
holding its smtpd_client_connection_count_limit on the first instance is refused by the
second until it closes one, and the connections of an anvil killed with -9 stop
counting once their lease (rostfix_anvil_connection_lease) lapses. The client connects from
127.0.0.7 so that the harness's own readiness probes (from 127.0.0.1) are not counted."""

import os
import shutil
import signal
import socket
import subprocess
import time
import tempfile
from pathlib import Path

import pytest

from harness import free_port, listening, read_reply, stop_process, wait_for

REDIS = shutil.which("redis-server")
CLIENT = "127.0.0.7"
REFUSED = "421 4.7.0 mx.rostfix.test Error: too many connections from 127.0.0.7"


class Redis:
    """A throw-away redis-server on a loopback port, nothing saved to disk."""

    def __init__(self, port, workdir):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=workdir)
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(port), timeout=10, what="redis to listen")

    def stop(self):
        stop_process(self.proc)


def greeting(inst):
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=20,
                                 source_address=(CLIENT, 0))
    f = s.makefile("rb")
    try:
        return read_reply(f)[0]
    finally:
        f.close()
        s.close()


def test_two_instances_share_the_connection_rate_through_redis(make_instance, workdir):
    if REDIS is None:
        pytest.skip("needs redis-server (tests/setup-deps.sh)")
    port = free_port()
    redis = Redis(port, workdir)
    try:
        settings = {
            "smtpd_client_connection_rate_limit": "3",
            "smtpd_client_event_limit_exceptions": "",
            "anvil_rate_time_unit": "60s",
            "rostfix_anvil_redis_server": f"127.0.0.1:{port}",
            "rostfix_anvil_redis_prefix": f"test{port}:",
        }
        first = make_instance(main_extra=settings)
        second = make_instance(main_extra=settings)
        # The three connections the rate allows, all on the first instance...
        firsts = [greeting(first) for _ in range(3)]
        assert all(g.startswith("220") for g in firsts), firsts
        # ...used up the client's rate on the second one too.
        assert greeting(second) == REFUSED
        assert "Connection rate limit exceeded: 4 from" in second.log_text()

        redis.stop()
        # Without Redis the second instance counts on its own: 2 connections so far.
        assert greeting(second).startswith("220")
        wait_for(lambda: "using this machine's own client rate limits" in second.log_text(),
                 what="anvil to say it fell back to local limits")

        redis = Redis(port, workdir)
        # anvil retries Redis after 5 s; the new server has forgotten the counts.
        wait_for(lambda: greeting(second).startswith("220") and
                 "reachable again: client rate limits and connection counts are shared"
                 in second.log_text(),
                 timeout=20, interval=1, what="shared limits to come back")
    finally:
        redis.stop()


def hold(inst):
    """An open session from CLIENT past its greeting: (socket, greeting)."""
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=20,
                                 source_address=(CLIENT, 0))
    f = s.makefile("rb")
    return s, f, read_reply(f)[0]


def test_two_instances_share_the_connection_count_as_leases(make_instance, workdir):
    if REDIS is None:
        pytest.skip("needs redis-server (tests/setup-deps.sh)")
    port = free_port()
    redis = Redis(port, workdir)
    held = []
    try:
        settings = {
            "smtpd_client_connection_count_limit": "2",
            "smtpd_client_event_limit_exceptions": "",
            "rostfix_anvil_redis_server": f"127.0.0.1:{port}",
            "rostfix_anvil_redis_prefix": f"count{port}:",
            "rostfix_anvil_connection_lease": "3s",
        }
        first = make_instance(main_extra=settings)
        second = make_instance(main_extra=settings)
        for _ in range(2):
            s, f, g = hold(first)
            assert g.startswith("220"), g
            held.append((s, f))
        # Two open on the first machine: the second refuses a third.
        assert greeting(second) == REFUSED
        assert "Connection concurrency limit exceeded: 3 from" in second.log_text()
        # Closing one frees a slot everywhere.
        s, f = held.pop()
        f.close()
        s.close()
        wait_for(lambda: greeting(second).startswith("220"), timeout=10, interval=0.5,
                 what="the slot given back to be seen by the second instance")
        # More than a lease later the one still open is still counted (renewed).
        time.sleep(4)
        s2, f2, g = hold(second)
        assert g.startswith("220"), g
        assert greeting(second) == REFUSED
        f2.close()
        s2.close()
        # The closed sessions' leases go back asynchronously (smtpd tells anvil, anvil
        # tells Redis): wait until the second instance sees a free slot again.
        wait_for(lambda: greeting(second).startswith("220"), timeout=10, interval=0.5,
                 what="the closed sessions' leases given back")
        # anvil of the first instance dies with -9 while two sessions are open: their
        # leases are never given back, but lapse.
        s, f, g = hold(first)
        assert g.startswith("220"), g
        held.append((s, f))
        assert greeting(second) == REFUSED
        anvils = [pid for pid, name in first.processes().items() if name == "anvil"]
        assert anvils, first.processes()
        for pid in anvils:
            os.kill(pid, signal.SIGKILL)
        assert greeting(second) == REFUSED
        wait_for(lambda: greeting(second).startswith("220"),
                 timeout=15, interval=0.5, what="the dead anvil's leases to lapse")
    finally:
        for s, f in held:
            f.close()
            s.close()
        redis.stop()
