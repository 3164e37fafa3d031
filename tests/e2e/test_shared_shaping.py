"""Shaping bucket rates shared by two Rostfix instances through one Redis server
(issue 20, rostfix_shaping_redis_server): a provider's rate in the rules file is the
rate of both machines together; a back-off one instance makes after a 421 is adopted
by the other; with Redis stopped both go on at their own rates and say so.

One sink stands for the provider (tests/e2e/test_shaping.py's Provider); its bucket
allows 3600 messages an hour (one a second) with a burst of 2. Sixteen messages, eight
through each instance, then take at least 14 seconds to arrive when the rate is shared,
and about 6 when each machine kept its own."""

import os
import re
import shutil
import tempfile
import time

import pytest

from harness import free_port, wait_for
from test_shaping import Provider
from test_shared_limits import Redis

REDIS = shutil.which("redis-server")
PER_INSTANCE = 8
BURST = 2

RULES = f"""# written by tests/e2e/test_shared_shaping.py
[shared]
mx = 127.0.0.1
rate = 3600
burst = {BURST}
backoff_factor = 0.5
rate_floor = 600
cooloff = 60s
recover_interval = 10s
"""


def send(inst, subjects, rcpt="user@shared.test"):
    with inst.smtp() as s:
        for subject in subjects:
            s.sendmail("news@example.org", [rcpt],
                       f"Subject: {subject}\r\n\r\nhello\r\n".encode())


def test_two_instances_share_a_bucket_rate_and_its_back_off(make_instance, workdir):
    if REDIS is None:
        pytest.skip("needs redis-server (tests/setup-deps.sh)")
    # The first RCPT for throttle@ gets 421 4.7.0 (a provider's rate-limit answer);
    # its retry is accepted.
    refused = []

    def refuse(command):
        if "throttle@" in command and not refused:
            refused.append(command)
            return True
        return False

    provider = Provider(free_port(), refuse=refuse)
    redis_port = free_port()
    redis = Redis(redis_port, workdir)
    base = tempfile.mkdtemp(prefix="shared-shaping-", dir=workdir)
    os.chmod(base, 0o755)
    rules = os.path.join(base, "shaping.cf")
    with open(rules, "w") as f:
        f.write(RULES)
    os.chmod(rules, 0o644)
    try:
        settings = {
            "transport_maps": f"inline:{{ shared.test=smtp:[127.0.0.1]:{provider.port} }}",
            "rostfix_shaping_rules": rules,
            "rostfix_shaping_redis_server": f"127.0.0.1:{redis_port}",
            "rostfix_shaping_redis_prefix": f"shaping{redis_port}:",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "queue_run_delay": "2s",
        }
        first = make_instance(main_extra=settings)
        second = make_instance(main_extra=settings)
        for inst in (first, second):
            wait_for(lambda: "shaping: loaded 1 bucket(s)" in inst.log_text(),
                     what="the rules to load")

        # 1. The rate is shared: sixteen messages at one a second (after the burst).
        sent = [f"rate {name} {i}" for name in ("first", "second")
                for i in range(PER_INSTANCE)]
        send(first, sent[:PER_INSTANCE])
        send(second, sent[PER_INSTANCE:])
        wait_for(lambda: len(provider.subjects()) >= len(sent), timeout=90, interval=0.5,
                 what="every message delivered")
        with provider.lock:
            times = sorted(t for t, s in provider.accepted if s in sent)
        span = times[-1] - times[0]
        # Shared: (16 - burst) tokens at one a second after the burst; unshared each
        # instance would need (8 - burst) seconds. The margin covers scheduling jitter.
        assert span >= len(sent) - BURST - 1.5, f"16 messages in {span:.1f}s"
        assert sorted(provider.subjects()) == sorted(sent), "exactly once"

        # 2. A back-off on the first instance reaches the second through Redis.
        send(first, ["throttled once"], rcpt="throttle@shared.test")
        wait_for(lambda: re.search(r"warning: shaping: bucket shared: rate 3600/h -> "
                                   r"1800/h after 421 4\.7\.0", first.log_text()),
                 timeout=30, what="the first instance's back-off")
        send(second, ["after the cut"])
        wait_for(lambda: "warning: shaping: bucket shared: rate 3600/h -> 1800/h after a "
                 "back-off on another machine" in second.log_text(), timeout=30,
                 what="the second instance to adopt the cut")
        wait_for(lambda: {"throttled once", "after the cut"} <= set(provider.subjects()),
                 timeout=60, interval=0.5, what="both messages delivered")

        # 3. Redis stopped: both instances go on at their own rates and say so.
        redis.stop()
        late = [f"late {name} {i}" for name in ("first", "second") for i in range(2)]
        send(first, late[:2])
        send(second, late[2:])
        for inst in (first, second):
            wait_for(lambda: f"shaping: redis server 127.0.0.1:{redis_port}: "
                     in inst.log_text()
                     and "using this machine's own bucket rates" in inst.log_text(),
                     timeout=30, what="the fall-back to local rates to be logged")
        wait_for(lambda: set(late) <= set(provider.subjects()), timeout=60,
                 interval=0.5, what="the messages sent without Redis")
        for inst in (first, second):
            inst.wait_queue_empty(timeout=30)
        everything = sent + ["throttled once", "after the cut"] + late
        assert sorted(provider.subjects()) == sorted(everything), "exactly once"
    finally:
        redis.stop()
        provider.stop()
