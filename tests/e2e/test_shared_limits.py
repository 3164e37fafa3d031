"""Client rate limits shared by two Rostfix instances through one Redis server
(issue 20, rostfix_anvil_redis_server): a client that uses up its connection rate on
the first instance is refused by the second; with Redis stopped both go on with their
own limits and say so, and shared limits come back with Redis. The client connects from
127.0.0.7 so that the harness's own readiness probes (from 127.0.0.1) are not counted."""

import shutil
import socket
import subprocess
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
                 "reachable again: client rate limits are shared" in second.log_text(),
                 timeout=20, interval=1, what="shared limits to come back")
    finally:
        redis.stop()
