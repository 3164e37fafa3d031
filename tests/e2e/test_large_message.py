"""A large message through a real instance (issue 18, memory with large messages):
20 MB relayed smtpd -> qmgr -> smtp -> a sink arrives byte for byte as sent (Rostfix
adds only its Received: header on top), the SIZE the smtp client declares is the size
of the DATA it sends, and the smtp process's peak resident memory (VmHWM) stays far
below the message size: the client streams the content from the queue file instead
of holding it (crates/queue/src/content.rs, crates/smtp/src/content.rs).

The sink here writes what it receives to a file instead of keeping it in memory, as
tests/e2e/smtpsink.py does (which is fine for small messages only)."""

import hashlib
import re
import socket
import socketserver
import tempfile
import threading
from pathlib import Path

from harness import free_port
from smtpsink import ThreadingServer

MESSAGE_SIZE = 20 * 1024 * 1024
# How much more than with a small message the smtp process may peak at (VmHWM) when it
# delivers the 20 MB one. Streaming needs a few buffers of 64 KiB; holding the message
# (and its dot-stuffed copy) took over 40 MB more.
SMTP_HWM_GROWTH_KB = 4 * 1024


class _Handler(socketserver.StreamRequestHandler):
    timeout = 60

    def _send(self, text):
        self.wfile.write((text + "\r\n").encode())
        self.wfile.flush()

    def _data(self):
        """Reads DATA to the final dot; writes the unstuffed bytes to the sink's file.
        Returns the number of bytes on the wire before the final dot. Lines of any
        length: only where a line starts matters."""
        sink = self.server.sink
        wire = 0
        at_start = True
        with open(sink.path, "wb") as out:
            while True:
                line = self.rfile.readline(1 << 20)
                if not line:
                    raise ConnectionError("client went away in DATA")
                if at_start and line == b".\r\n":
                    return wire
                wire += len(line)
                if at_start and line.startswith(b"."):
                    line = line[1:]
                out.write(line)
                at_start = line.endswith(b"\n")

    def handle(self):
        sink = self.server.sink
        self._send("220 bigsink.test ESMTP")
        try:
            while True:
                line = self.rfile.readline(65536)
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    # SIZE with a limit: the client then declares the size in MAIL.
                    self.wfile.write(b"250-bigsink.test\r\n250-PIPELINING\r\n"
                                     b"250-8BITMIME\r\n250 SIZE 1000000000\r\n")
                    self.wfile.flush()
                elif verb == b"MAIL":
                    m = re.search(rb"SIZE=(\d+)", line)
                    sink.declared_size = int(m.group(1)) if m else None
                    self._send("250 ok")
                elif verb == b"RCPT":
                    self._send("250 ok")
                elif verb == b"DATA":
                    self._send("354 go")
                    sink.wire_size = self._data()
                    sink.done.set()
                    self._send("250 stored")
                elif verb == b"QUIT":
                    self._send("221 bye")
                    return
                else:
                    self._send("250 ok")
        except (ConnectionError, socket.timeout, OSError):
            return


class BigSink:
    """Takes one message at a time into `path` (the last one wins)."""

    def __init__(self, port, path):
        self.path = path
        self.declared_size = None
        self.wire_size = None
        self.done = threading.Event()
        self.server = ThreadingServer(("127.0.0.1", port), _Handler)
        self.server.sink = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def status_kb(pid, field):
    """A `VmXXX:` field of /proc/PID/status in kB, None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakSampler:
    """Samples the VmHWM of the instance's processes of one program every 50 ms, so a
    process that exits before the end is still counted: {pid: peak kB}."""

    def __init__(self, inst, program):
        self.inst, self.program = inst, program
        self.peaks = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(0.05)

    def sample(self):
        for pid, name in self.inst.processes().items():
            if name == self.program:
                hwm = status_kb(pid, "VmHWM")
                if hwm is not None:
                    self.peaks[pid] = max(hwm, self.peaks.get(pid, 0))

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.sample()
        return self.peaks


def big_message(size, tag="big"):
    """About `size` bytes of 7-bit mail in CRLF lines, with every header a relay would
    otherwise add, and lines dot-stuffing must get right: a lone dot, dots at the start,
    a line of dots, and an empty line."""
    head = (f"From: a@example.org\r\nTo: r@remote.example\r\nSubject: {tag}\r\n"
            f"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <{tag}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n").encode()
    lines = []
    total = len(head)
    i = 0
    specials = [b".", b"..", b".leading dot", b"", b"...", b"a. b", b"=2E"]
    while total < size:
        if i % 97 == 0:
            line = specials[(i // 97) % len(specials)]
        else:
            digest = hashlib.sha256(str(i).encode()).hexdigest()
            line = f"{i:08d} {digest} {digest[: i % 64]}".encode()
        lines.append(line + b"\r\n")
        total += len(line) + 2
        i += 1
    return head + b"".join(lines)


def test_a_20mb_message_is_streamed_by_the_smtp_client(make_instance, workdir):
    port = free_port()
    got = Path(tempfile.mkdtemp(prefix="bigsink-", dir=workdir)) / "received"
    sink = BigSink(port, got)
    try:
        inst = make_instance(main_extra={
            "relayhost": f"[127.0.0.1]:{port}",
            # No size limit (the default 10 240 000 would refuse 20 MB).
            "message_size_limit": "0",
        })
        # A small message first: the smtp process's peak with it is the baseline (a
        # debug build with its libraries loaded: about 16 MB).
        sampler = PeakSampler(inst, "smtp")
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["r@remote.example"], big_message(1000, "small"))
        assert sink.done.wait(60), "the small message did not reach the sink"
        inst.wait_queue_empty(timeout=60)
        baseline = sampler.stop()
        assert baseline, "no smtp process seen"
        sink.done.clear()
        message = big_message(MESSAGE_SIZE)
        sampler = PeakSampler(inst, "smtp")
        try:
            with inst.smtp() as s:
                s.sendmail("a@example.org", ["r@remote.example"], message)
            assert sink.done.wait(180), "the message did not reach the sink"
            # The agent marks the recipient done after the sink's reply.
            inst.wait_queue_empty(timeout=60)
        finally:
            peaks = sampler.stop()
        received = got.read_bytes()
        assert received.endswith(message), (len(received), len(message))
        added = received[: len(received) - len(message)].decode("ascii")
        assert re.fullmatch(r"Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*", added), added
        # SIZE= is the size of what went after DATA (dot-stuffed, CRLF).
        assert sink.declared_size == sink.wire_size, (sink.declared_size, sink.wire_size)
        assert peaks, "no smtp process seen"
        growth = max(peaks.values()) - max(baseline.values())
        assert growth < SMTP_HWM_GROWTH_KB, (baseline, peaks)
        log = inst.log_text()
        assert re.search(r"rostfix/smtp\[\d+\]: [0-9A-F]+: to=<r@remote\.example>, "
                         r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent \(250 stored\)",
                         log), log[-3000:]
    finally:
        sink.stop()
