"""Records the system calls of a running instance with strace, and parses the record.

The durability tests (test_durability.py) need to see what the daemons did, in order:
a missing fsync survives kill -9 (the page cache outlives the process), so only the
sequence of calls shows it. `SyscallTrace` attaches `strace -f` to every process of
the instance (master, so the children it forks later are followed, and the daemons
already running), with `-yy` so each descriptor is printed with its path or socket,
`-ttt -T` so each call has a start time and a duration, and a large `-s` so written
data can be matched.

Calls are ordered by time, not by line: with several processes and threads a call's
line can be split ("<unfinished ...>" then "<... resumed>"). For "A completed before B
started", compare `a.end <= b.start`: strace stamps both at the moment it stops the
traced thread, and one strace handles the stops one after another.
"""

import re
import subprocess
import threading
from dataclasses import dataclass

from harness import wait_for

TRACED = ("openat,write,writev,pwrite64,pwritev,fsync,fdatasync,syncfs,rename,renameat,"
          "renameat2,link,linkat,unlink,unlinkat,close,sendto,sendmsg,execve")

_LINE = re.compile(r"^(\d+) +(\d+\.\d+) (.*)$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
_DURATION = re.compile(r"^(.*) <(\d+\.\d+)>$")
# First argument printed by -yy: "7</path/to/file>", or a socket whose description
# holds "->": "6<TCP:[127.0.0.1:25->127.0.0.1:40000]>", "6<UNIX-STREAM:[1->2,"p"]>".
_FD_ARG = re.compile(r"^-?\d+<((?:[A-Z0-9-]+:\[[^\]]*\])|[^>]*)>")
_ATTACHED = re.compile(r"^strace: Process (\d+) attached")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass
class Call:
    """One completed system call of one thread."""
    tid: int
    name: str
    args: str
    ret: str
    start: float
    end: float

    @property
    def ok(self):
        return not self.ret.startswith("-1") and not self.ret.startswith("?")

    @property
    def fd_path(self):
        """What -yy printed for the first argument (a path, or `TCP:[...]`), or ''."""
        m = _FD_ARG.match(self.args)
        return m.group(1) if m else ""

    def strings(self):
        """The quoted string arguments, unescaped as far as strace's \\ escapes go."""
        # Skip the descriptor: a unix socket's description quotes its path.
        m = _FD_ARG.match(self.args)
        rest = self.args[m.end():] if m else self.args
        return [_unescape(s) for s in _STRING.findall(rest)]

    def __str__(self):
        return f"[{self.tid} {self.start:.6f}] {self.name}({self.args[:200]}) = {self.ret}"


def _unescape(text):
    def one(m):
        esc = m.group(1)
        simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "v": "\v",
                  "f": "\f", "0": "\0"}
        if esc in simple:
            return simple[esc]
        if esc.startswith("x"):
            return chr(int(esc[1:], 16))
        return chr(int(esc, 8))
    return re.sub(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", one, text)


def parse(text):
    """The completed calls in `text` (strace -f -ttt -T output), by start time."""
    calls = []
    pending = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        tid, start, body = int(m.group(1)), float(m.group(2)), m.group(3)
        if body.startswith(("+++", "---")):
            continue
        resumed = _RESUMED.match(body)
        if resumed:
            first = pending.pop(tid, None)
            if first is None or first[0] != resumed.group(1):
                continue
            name, start, head = first
            body = f"{name}({head}{resumed.group(2)}"
        elif body.endswith("<unfinished ...>"):
            name, _, head = body[: -len("<unfinished ...>")].rstrip().partition("(")
            pending[tid] = (name, start, head)
            continue
        d = _DURATION.match(body)
        if not d:
            continue
        body, duration = d.group(1), float(d.group(2))
        call_text, sep, ret = body.rpartition(") = ")
        if not sep:
            continue
        name, _, args = call_text.partition("(")
        calls.append(Call(tid, name, args, ret, start, start + duration))
    calls.sort(key=lambda c: c.start)
    return calls


class SyscallTrace:
    """Context manager: strace attached to the instance's processes while it runs."""

    def __init__(self, instance, out_path, strsize=4096):
        self.instance = instance
        self.out_path = out_path
        self.strsize = strsize
        self.proc = None
        self.stderr_lines = []
        self._reader = None

    def __enter__(self):
        pids = self.instance.pids()
        assert pids, "the instance runs no process to trace"
        argv = ["strace", "-f", "-ttt", "-T", "-yy", "-s", str(self.strsize),
                "-o", str(self.out_path), "-e", "trace=" + TRACED]
        for pid in pids:
            argv += ["-p", str(pid)]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        # strace reports each attached process on stderr; mail sent before that would
        # go untraced.
        # ("Process N attached", or "... attached with K threads").
        def attached():
            done = set()
            for line in list(self.stderr_lines):
                m = _ATTACHED.match(line)
                if m:
                    done.add(int(m.group(1)))
            return set(pids) <= done or self.proc.poll() is not None
        wait_for(attached, timeout=20, what="strace to attach to every process")
        assert self.proc.poll() is None, f"strace exited: {self.stderr_lines[-5:]}"
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Let the reader see EOF so nothing is left writing to the list.
        self._reader.join(timeout=5)
        return False

    def calls(self):
        with open(self.out_path, errors="replace") as f:
            return parse(f.read())
