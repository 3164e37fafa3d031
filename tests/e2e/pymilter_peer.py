"""A milter on Sendmail's own libmilter (Debian's python3-milter), run by
test_milter.py as `pymilter_peer.py PORT`. What it does depends on the message:

- RCPT TO the address given as second argument: refused with its own reply code
  (SMFIR_REPLYCODE); the same address is the one "edit-me" adds.
- Subject "edit-me": at the end of the message it adds X-Milter-Macros (the values
  of the macros i, j, {mail_addr}, {daemon_name} it was sent), inserts X-Milter-Top
  at the top, changes the second X-Change header, deletes X-Delete, changes the
  sender, deletes the first recipient, adds another and replaces the body.
- Subject "quarantine-me": QUARANTINE (Postfix: the hold queue).
- Subject "reject-me": REJECT at the end of the message.
- Subject "discard-me": DISCARD.
Everything else passes unchanged."""

import sys

import Milter


class Peer(Milter.Base):
    def __init__(self):
        self.subject = ""
        self.rcpts = []

    @Milter.noreply
    def connect(self, hostname, family, hostaddr):
        return Milter.CONTINUE

    def envfrom(self, sender, *args):
        self.subject = ""
        self.rcpts = []
        self.mail_addr = self.getsymval("{mail_addr}")
        self.daemon = self.getsymval("{daemon_name}")
        self.j = self.getsymval("j")
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *args):
        if rcpt.strip("<>").lower() == sys.argv[2].lower():
            self.setreply("550", "5.7.9", "blocked by the test milter")
            return Milter.REJECT
        self.rcpts.append(rcpt.strip("<>"))
        return Milter.CONTINUE

    def header(self, name, value):
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
    Milter.factory = Peer
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.DELRCPT
                     | Milter.CHGFROM | Milter.CHGBODY | Milter.QUARANTINE)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    Milter.runmilter("rostfix-test", f"inet:{port}@127.0.0.1", 60)


if __name__ == "__main__":
    main()
