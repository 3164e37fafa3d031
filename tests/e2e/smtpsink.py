"""A minimal SMTP server on loopback for end-to-end tests: records every message it
accepts (envelope and data) and can hand chosen recipients back to another SMTP server
(a "remailer"), which is how a forwarding loop through a remote site is staged.
It can also play a failing receiver: a fixed reply to every MAIL, RCPT or end of DATA,
or a STARTTLS that answers with bytes that are not TLS. Bounded: lines of at most 64 KiB, 30 s socket timeouts, stopped by stop()."""

import smtplib
import socket
import socketserver
import threading


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def _line(self):
        line = self.rfile.readline(65536)
        if not line:
            raise ConnectionError("client went away")
        self.last_raw = line
        return line.decode("latin-1").rstrip("\r\n")

    def _send(self, text):
        self.wfile.write((text + "\r\n").encode())

    def handle(self):
        sink = self.server.sink
        self._send("220 sink.test ESMTP")
        sender, rcpts = None, []
        try:
            while True:
                line = self._line()
                verb = line[:4].upper()
                if verb == "EHLO" and sink.broken_tls:
                    self._send("250-sink.test")
                    self._send("250 STARTTLS")
                elif verb in ("EHLO", "HELO"):
                    self._send("250 sink.test")
                elif verb == "STAR" and sink.broken_tls:
                    self._send("220 ready")
                    self.wfile.write(b"this is not a TLS server hello\r\n" * 4)
                    self.wfile.flush()
                    return
                elif verb == "MAIL":
                    if sink.mail_reply:
                        self._send(sink.mail_reply)
                        if sink.mail_reply.startswith("421"):
                            return
                        continue
                    sender, rcpts = line.split(":", 1)[1].strip().split()[0].strip("<>"), []
                    with sink.lock:
                        sink.senders.append(sender)
                    self._send("250 ok")
                elif verb == "RCPT":
                    rcpt = line.split(":", 1)[1].strip().split()[0].strip("<>")
                    with sink.lock:
                        sink.rcpts_seen.append(rcpt)
                    if rcpt in sink.rcpt_replies:
                        self._send(sink.rcpt_replies[rcpt])
                        continue
                    if sink.rcpt_reply:
                        self._send(sink.rcpt_reply)
                        continue
                    rcpts.append(rcpt)
                    self._send("250 ok")
                elif verb == "DATA":
                    self._send("354 go")
                    data, raw = [], b""
                    while True:
                        l = self._line()
                        raw += self.last_raw
                        if l == ".":
                            break
                        data.append(l[1:] if l.startswith("..") else l)
                    if sink.data_reply:
                        self._send(sink.data_reply)
                        continue
                    sink.received(sender, rcpts, "\n".join(data) + "\n", raw)
                    self._send("250 queued")
                elif verb == "QUIT":
                    self._send("221 bye")
                    return
                else:
                    self._send("250 ok")
        except (ConnectionError, socket.timeout, OSError):
            return


class ThreadingServer(socketserver.ThreadingTCPServer):
    """The test servers' base: a thread per connection, and a listening socket that
    never blocks in accept(). socketserver accepts after poll() says the socket is
    readable; a client that resets before the accept (a table lookup given up on)
    leaves a blocking accept() waiting for good, the server answers nobody again,
    and its shutdown() hangs the test run (test_net_tables did, in CI). Non-blocking,
    that accept() fails with EAGAIN, which socketserver ignores."""

    allow_reuse_address = True
    daemon_threads = True
    # socketserver listens with a backlog of 5. Our smtp client reconnects for each
    # message a sink refuses with 421, dozens a second: when the accept queue was
    # full the kernel dropped the handshake's last ACK, the client saw an
    # established connection, and waited its smtp_helo_timeout (300 s) for a
    # greeting that never came (gdb showed smtp blocked in the greeting read, ss a
    # client-side ESTABLISHED socket with no server side). That stalled
    # test_campaign_delivery_log_classes once in about three runs.
    request_queue_size = 1024

    def server_activate(self):
        super().server_activate()
        self.socket.setblocking(False)

    def get_request(self):
        conn, addr = super().get_request()
        # Accepted sockets must block as before (the handlers read with makefile()).
        conn.setblocking(True)
        return conn, addr



class Sink:
    """Sink(port, remail={"rcpt@remote": ("127.0.0.1", port, "new@rcpt")},
    rcpt_replies={"rcpt@remote": "550 5.1.1 no such user"}): RCPT for a listed
    address gets that reply instead of 250. `senders` lists every MAIL FROM,
    `rcpts_seen` every RCPT TO address (refused ones too). mail_reply, rcpt_reply and
    data_reply answer every MAIL, RCPT (not listed in rcpt_replies) or end of DATA
    with that reply (a 421 to MAIL closes the connection); broken_tls offers
    STARTTLS and answers it with bytes that are not TLS."""

    def __init__(self, port, remail=None, rcpt_replies=None, mail_reply=None,
                 rcpt_reply=None, data_reply=None, broken_tls=False):
        self.messages = []
        self.senders = []
        self.rcpts_seen = []
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.broken_tls = broken_tls
        self.rcpt_replies = rcpt_replies or {}
        self.raw = []
        self.remail = remail or {}
        self.lock = threading.Lock()
        self.server = ThreadingServer(("127.0.0.1", port), _Handler)
        self.server.sink = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, sender, rcpts, data, raw=b""):
        with self.lock:
            self.messages.append((sender, rcpts, data))
            # The DATA bytes exactly as they came, terminating ".\r\n" included.
            self.raw.append(raw)
        for r in rcpts:
            if r in self.remail:
                host, port, to = self.remail[r]
                with smtplib.SMTP(host, port, timeout=30) as s:
                    s.sendmail(sender, [to], data.replace("\n", "\r\n").encode())

    def for_rcpt(self, rcpt):
        with self.lock:
            return [m for m in self.messages if rcpt in m[1]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
