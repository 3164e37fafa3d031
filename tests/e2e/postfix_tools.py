"""Postfix's own test tools for the end-to-end tests: smtp-sink as a next hop that
accepts (or answers 4xx to chosen commands), unpacked from Debian's postfix package by
tests/fetch-postfix-tools.sh, never installed."""

import subprocess
from pathlib import Path

import pytest

from harness import REPO, free_port, listening, stop_process, wait_for

TOOLS = REPO / "tests" / "fetch-postfix-tools.sh"


def postfix_tools():
    """The folder Debian's postfix package was unpacked in, or skip."""
    proc = subprocess.run([str(TOOLS)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"Postfix's smtp-sink unavailable: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


class SmtpSink:
    """Postfix's smtp-sink on a loopback port; `reject` names commands answered 4xx."""

    def __init__(self, pfx, reject=None):
        self.port = free_port()
        argv = [str(pfx / "usr/sbin/smtp-sink"), "-u", "nobody"]
        if reject:
            argv += ["-r", reject]
        argv += [f"127.0.0.1:{self.port}", "64"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
               "LD_LIBRARY_PATH": str(pfx / "usr/lib/postfix")}
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(self.port), timeout=10, what="smtp-sink to listen")

    def stop(self):
        stop_process(self.proc, timeout=5)
