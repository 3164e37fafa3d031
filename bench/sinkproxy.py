#!/usr/bin/python3
"""Counting TCP proxy in front of smtp-sink, for bench.py's fanout-100k scenario.

One listening port of 127.0.0.1 per destination domain; each accepted connection is
relayed byte for byte to one of a few smtp-sink backends (fast, slow, 421, 450), chosen
by the port's behaviour and the connection's number, and counted. smtp-sink itself
cannot tell how many sessions one destination holds at once; this proxy can, exactly,
because every session of a destination goes through that destination's port.

Usage: sinkproxy.py CONFIG.json, where the file holds
    {"ports": {"PORT": "fast" | "slow" | "421" | "450", ...},
     "backends": {"fast": PORT, "slow": PORT, "421": PORT, "450": PORT},
     "reject_every": N}
A "421" or "450" port sends its 1st, (N+1)th, (2N+1)th... connection to the rejecting
backend and the others to the fast one, so its mail is refused for part of the traffic
and still gets through on a retry. Commands, one per line on standard input:
"stats" prints one JSON line {"peak": {PORT: most sessions open at once}, "sessions":
{PORT: sessions accepted}, "open": sessions open now}; "reset" zeroes the peaks and
counts. End of input stops it. Traffic is on 127.0.0.1 only.
"""

import asyncio
import json
import resource
import sys

HOST = "127.0.0.1"


class Stats:
    def __init__(self, ports):
        self.open = {p: 0 for p in ports}
        self.peak = {p: 0 for p in ports}
        self.sessions = {p: 0 for p in ports}
        self.seen = {p: 0 for p in ports}  # never reset: picks the backend

    def reset(self):
        for p in self.peak:
            self.peak[p] = self.open[p]
            self.sessions[p] = 0

    def report(self):
        return {"peak": {str(p): n for p, n in self.peak.items() if n},
                "sessions": {str(p): n for p, n in self.sessions.items() if n},
                "open": sum(self.open.values())}


class Backend(asyncio.Protocol):
    """The connection to smtp-sink: what it says goes to the client."""

    def __init__(self, client):
        self.client = client
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.client.transport.write(data)

    def connection_lost(self, exc):
        self.client.close()

    def pause_writing(self):
        self.client.transport.pause_reading()

    def resume_writing(self):
        self.client.transport.resume_reading()


class Client(asyncio.Protocol):
    """A session from the MTA under test, counted from accept to its end.

    The count drops when the MTA's end of the session is seen (EOF) or when the proxy
    closes it, whichever comes first: both happen before the MTA can know that the
    session is over, so a session it opens after closing one is never counted beside
    it. (connection_lost alone can run after the next connection's connection_made.)"""

    def __init__(self, port, cfg, stats):
        self.port, self.cfg, self.stats = port, cfg, stats
        self.transport = self.backend = None
        self.pending = []
        self.counted = False

    def connection_made(self, transport):
        self.transport = transport
        st, p = self.stats, self.port
        st.open[p] += 1
        st.peak[p] = max(st.peak[p], st.open[p])
        st.sessions[p] += 1
        self.counted = True
        n = st.seen[p]
        st.seen[p] += 1
        mode = self.cfg["ports"][p]
        if mode in ("421", "450") and n % self.cfg["reject_every"] != 0:
            mode = "fast"
        asyncio.get_running_loop().create_task(self._connect(self.cfg["backends"][mode]))

    async def _connect(self, port):
        loop = asyncio.get_running_loop()
        try:
            _t, backend = await loop.create_connection(lambda: Backend(self), HOST, port)
        except OSError:
            self.close()
            return
        if self.transport.is_closing():
            backend.transport.close()
            return
        self.backend = backend
        for data in self.pending:
            backend.transport.write(data)
        self.pending = []

    def data_received(self, data):
        if self.backend:
            self.backend.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self):
        self._uncount()
        return False  # the transport closes itself

    def close(self):
        self._uncount()
        self.transport.close()

    def _uncount(self):
        if self.counted:
            self.counted = False
            self.stats.open[self.port] -= 1

    def connection_lost(self, exc):
        self._uncount()
        if self.backend:
            self.backend.transport.close()

    def pause_writing(self):
        if self.backend:
            self.backend.transport.pause_reading()

    def resume_writing(self):
        if self.backend:
            self.backend.transport.resume_reading()


async def serve(cfg):
    loop = asyncio.get_running_loop()
    stats = Stats(cfg["ports"])
    servers = []
    for port in cfg["ports"]:
        servers.append(await loop.create_server(
            lambda p=port: Client(p, cfg, stats), HOST, port, backlog=256,
            reuse_address=True))
    print(json.dumps({"listening": len(servers)}), flush=True)
    done = loop.create_future()

    def command():
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin.fileno())
            done.set_result(None)
        elif line.strip() == "stats":
            print(json.dumps(stats.report()), flush=True)
        elif line.strip() == "reset":
            stats.reset()
            print(json.dumps({"reset": True}), flush=True)
    loop.add_reader(sys.stdin.fileno(), command)
    await done
    for s in servers:
        s.close()


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    cfg["ports"] = {int(p): m for p, m in cfg["ports"].items()}
    # One descriptor per listening port, two per session.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
