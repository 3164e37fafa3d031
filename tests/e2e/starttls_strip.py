"""A STARTTLS-stripping man in the middle for the smtp client tests: listens on a
free 127.0.0.1 port, relays each connection to an upstream SMTP server, and removes
the STARTTLS capability from the server's EHLO reply (the keyword is overwritten, so
a multi-line reply keeps its shape). Runs on threads of the test process; `close()`
stops it. `connections` counts the clients it relayed. `Listener` is the accepting
thread it runs on, for other loopback servers of the tests."""

import socket
import threading

from harness import free_port


class Listener:
    """Accepts TCP clients on host:port on a thread of its own and hands each to
    `on_client(sock)`; `close()` closes the listener and every socket in `open`."""

    def __init__(self, host, port, on_client):
        self.open = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.on_client = on_client
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(client)
            self.on_client(client)

    def close(self):
        self.sock.close()
        for s in self.open:
            s.close()


class StarttlsStripper:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.connections = 0
        self.listener = Listener("127.0.0.1", self.port, self._relay)

    def _relay(self, client):
        self.connections += 1
        try:
            server = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self.listener.open.append(server)
        threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    @staticmethod
    def _pump(src, dst, strip):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not strip:
                    dst.sendall(data)
                    continue
                pending += data
                *lines, pending = pending.split(b"\n")
                out = b""
                for line in lines:
                    if line[:3] == b"250" and b"STARTTLS" in line.upper():
                        line = line[:4] + b"XXXXXXXX" + line[12:]
                    out += line + b"\n"
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
