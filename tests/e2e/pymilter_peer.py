"""A milter on Sendmail's own libmilter (Debian's python3-milter), run by
test_milter.py as `pymilter_peer.py PORT ADDRESS [leadspc] [rcptrej]` (the flags ask
for SMFIP_HDR_LEADSPC and SMFIP_RCPT_REJ). At negotiation it names its own connect
macros (SETSYMLIST: j, {daemon_name}, {daemon_addr}, {client_port}, {daemon_port}).
What it does depends on the message:

- RCPT TO the address given as second argument: refused with its own reply code
  (SMFIR_REPLYCODE); the same address is the one "edit-me" adds.
- Subject "edit-me": at the end of the message it adds X-Milter-Macros (the values
  of the macros i, j, {mail_addr}, {daemon_name} it was sent), inserts X-Milter-Top
  at the top, changes the second X-Change header, deletes X-Delete, changes the
  sender, deletes the first recipient, adds another and replaces the body.
- Subject "quarantine-me": QUARANTINE (Postfix: the hold queue).
- Subject "reject-me": REJECT at the end of the message.
- Subject "discard-me": DISCARD.
- Subject "protocol-me": at the end of the message it adds X-Milter-Connect (the
  CONNECT address and port, and the connect macros above), X-Milter-Rejected (the
  refused recipients it was shown, with {rcpt_host} and {rcpt_addr}), X-Milter-Fold
  (the raw value of X-Fold as received) and X-Lead ("\tled", written as is).
- An unknown SMTP command starting with XYZZY: refused with its own reply.
Everything else passes unchanged."""

import sys

import Milter


class Peer(Milter.Base):
    def __init__(self):
        self.subject = ""
        self.rcpts = []
        self.rejected = []
        self.fold = None
        self.conn = ""

    def negotiate(self, opts):
        result = super().negotiate(opts)
        # Named here rather than with @Milter.symlist, which passes bytes where
        # Debian's pymilter C module wants str.
        if self._actions & Milter.SETSYMLIST:
            self._ctx.setsymlist(Milter.M_CONNECT,
                                 "j {daemon_name} {daemon_addr} {client_port} {daemon_port}")
        return result

    @Milter.noreply
    def connect(self, hostname, family, hostaddr):
        macros = " ".join(f"{m.strip('{}')}={self.getsymval(m)}"
                          for m in ("{client_port}", "{daemon_addr}", "{daemon_port}"))
        self.conn = f"{hostname} {hostaddr[0]} {hostaddr[1]} {macros}"
        return Milter.CONTINUE

    def unknown(self, cmd):
        if cmd.upper().startswith("XYZZY"):
            self.setreply("550", "5.7.2", "unknown command refused by the test milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envfrom(self, sender, *args):
        self.subject = ""
        self.rcpts = []
        self.rejected = []
        self.fold = None
        self.mail_addr = self.getsymval("{mail_addr}")
        self.daemon = self.getsymval("{daemon_name}")
        self.j = self.getsymval("j")
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *args):
        if self.getsymval("{rcpt_mailer}") == "error":
            # Shown only with SMFIP_RCPT_REJ; the answer changes nothing.
            self.rejected.append(f"{rcpt} {self.getsymval('{rcpt_host}')} "
                                 f"{self.getsymval('{rcpt_addr}')}")
            return Milter.CONTINUE
        if rcpt.strip("<>").lower() == sys.argv[2].lower():
            self.setreply("550", "5.7.9", "blocked by the test milter")
            return Milter.REJECT
        self.rcpts.append(rcpt.strip("<>"))
        return Milter.CONTINUE

    def header(self, name, value):
        if name.lower() == "x-fold":
            self.fold = value
        if name.lower() == "subject":
            self.subject = value.strip()
        return Milter.CONTINUE

    def eom(self):
        if self.subject == "reject-me":
            return Milter.REJECT
        if self.subject == "discard-me":
            return Milter.DISCARD
        if self.subject == "quarantine-me":
            self.quarantine("test milter quarantine")
            return Milter.ACCEPT
        if self.subject == "protocol-me":
            self.addheader("X-Milter-Connect", self.conn)
            self.addheader("X-Milter-Rejected", "; ".join(self.rejected) or "none")
            self.addheader("X-Milter-Fold", repr(self.fold))
            self.addheader("X-Lead", "\tled")
            return Milter.ACCEPT
        if self.subject == "edit-me":
            macros = (f"i={self.getsymval('i')} j={self.j} mail_addr={self.mail_addr} "
                      f"daemon_name={self.daemon}")
            self.addheader("X-Milter-Macros", macros)
            self.addheader("X-Milter-Top", "inserted", 0)
            self.chgheader("X-Change", 2, "changed by milter")
            self.chgheader("X-Delete", 1, "")
            self.chgfrom("<changed@rostfix.test>")
            self.delrcpt(f"<{self.rcpts[0]}>")
            self.addrcpt(f"<{sys.argv[2]}>")
            self.replacebody(b"replaced by the milter\r\n")
        return Milter.ACCEPT


def main():
    port = sys.argv[1]
    peer = Peer
    if "leadspc" in sys.argv[3:]:
        peer = Milter.header_leading_space(peer)
    if "rcptrej" in sys.argv[3:]:
        peer = Milter.rejected_recipients(peer)
    Milter.factory = peer
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.DELRCPT
                     | Milter.CHGFROM | Milter.CHGBODY | Milter.QUARANTINE)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    Milter.runmilter("rostfix-test", f"inet:{port}@127.0.0.1", 60)


if __name__ == "__main__":
    main()
