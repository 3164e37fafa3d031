"""An SMTP sink on loopback that can hold its clients: while `holding` is true a
connection gets no greeting (the client times out after smtp_helo_timeout and defers
the message, which stays queued); once it is false the sink records mail as
smtpsink.Sink does. Tests use it to keep deliveries in flight for a known time."""

import smtpsink


class _HoldingHandler(smtpsink._Handler):
    def handle(self):
        sink = self.server.sink
        if sink.holding:
            with sink.lock:
                sink.held += 1
            self.connection.settimeout(60)
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass
            return
        super().handle()


class HoldingSink(smtpsink.Sink):
    def __init__(self, port):
        self.holding = True
        # Connections held so far.
        self.held = 0
        super().__init__(port)
        # Before any client: nothing connects until the test sends mail.
        self.server.RequestHandlerClass = _HoldingHandler
