"""Improper command pipelining (issue 12 item 6): with smtpd_forbid_unauth_pipelining
(default yes, as Postfix 3.9) an unauthenticated client that sends more input after a
command it must wait for (EHLO, DATA, NOOP, QUIT...) gets `554 5.5.0 Error: improper
command pipelining` and is disconnected, so a second message hidden behind a refused
DATA is never read as commands. Legitimate RFC 2920 pipelining keeps working."""

import socket

from harness import USER1, USER2, maildir_messages, wait_for

IMPROPER = "554 5.5.0 Error: improper command pipelining"

# 127.0.0.1 outside mynetworks, so that a remote recipient is refused (454 relay
# access denied) and DATA has no valid recipient.
OUTSIDE = {"mynetworks": "192.0.2.0/24"}


class Raw:
    """A raw client: writes exactly what it is given, reads replies line by line."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.closed = False

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        """The lines of one reply (a multi-line one whole)."""
        lines = []
        while True:
            line = self.line()
            if line is None:
                return lines
            lines.append(line)
            if line[3:4] != "-":
                return lines

    def rest(self):
        """Every reply line until the server closes the connection."""
        lines = []
        while (line := self.line()) is not None:
            lines.append(line)
        return lines

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def hidden_message(tag):
    """Message text carrying the commands of a second message to a local user."""
    return (b"MAIL FROM:<evil@attacker.example>\r\n"
            + f"RCPT TO:<{USER1}@localhost>\r\nDATA\r\n".encode()
            + f"Subject: smuggled {tag}\r\n\r\nhidden body {tag}\r\n.\r\n".encode())


def deliver_marker(inst, tag):
    """A normal message to USER1, waited for: every earlier message had its chance."""
    with inst.smtp() as c:
        c.sendmail("alice@example.org", [f"{USER1}@localhost"],
                   f"Subject: marker {tag}\r\n\r\nmarker\r\n".encode())
    wait_for(lambda: any(f"marker {tag}".encode() in m for _, m in maildir_messages(USER1)),
             what="the marker message")
    inst.wait_queue_empty()


def test_hidden_message_after_refused_data_is_never_queued(make_instance):
    inst = make_instance(main_extra=OUTSIDE)
    # The attack, all in ONE write: EHLO already has input behind it.
    c = Raw(inst.port)
    assert c.reply()[0].startswith("220")
    c.send(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<victim@remote.example>\r\nDATA\r\n"
           + hidden_message("one") + b"QUIT\r\n")
    assert c.rest() == [IMPROPER]
    assert c.closed
    c.close()
    # EHLO waited for, then the rest in one write: DATA has the hidden text behind it.
    c = Raw(inst.port)
    assert c.reply()[0].startswith("220")
    c.send(b"EHLO x\r\n")
    assert c.reply()[-1].startswith("250 ")
    c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<victim@remote.example>\r\nDATA\r\n"
           + hidden_message("two") + b"QUIT\r\n")
    assert c.rest() == ["250 2.1.0 Ok", "454 4.7.1 <victim@remote.example>: Relay access denied",
                        IMPROPER]
    assert c.closed
    c.close()

    deliver_marker(inst, "after the attacks")
    msgs = maildir_messages(USER1)
    assert len(msgs) == 1, [m[:200] for _, m in msgs]
    assert b"hidden body" not in msgs[0][1]
    assert not inst.queue_ids()
    log = inst.log_text()
    assert "from=<evil@attacker.example>" not in log
    assert "improper command pipelining after EHLO from unknown[127.0.0.1]: MAIL FROM:<a@b.example>\\r\\n" in log
    assert "improper command pipelining after DATA from unknown[127.0.0.1]: MAIL FROM:<evil@attacker.example>\\r\\n" in log
    # The refused command counts as failed in the disconnect line.
    assert "disconnect from unknown[127.0.0.1] ehlo=0/1 commands=0/1" in log
    assert "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 data=0/1 commands=2/4" in log


def test_commands_after_quit_or_noop_in_the_same_write(make_instance):
    inst = make_instance()
    for script, after in [(b"QUIT\r\nMAIL FROM:<a@b.example>\r\n", "QUIT"),
                          (b"NOOP\r\nRSET\r\n", "NOOP"),
                          (b"HELO x\r\nMAIL FROM:<a@b.example>\r\n", "HELO")]:
        c = Raw(inst.port)
        assert c.reply()[0].startswith("220")
        c.send(b"EHLO x\r\n")
        c.reply()
        c.send(script)
        assert c.rest() == [IMPROPER], script
        c.close()
        wait_for(lambda: f"improper command pipelining after {after} from" in inst.log_text(),
                 what=f"the log line for {after}")


def test_rfc2920_pipelining_still_works(make_instance):
    inst = make_instance()
    c = Raw(inst.port)
    assert c.reply()[0].startswith("220")
    c.send(b"EHLO client.test\r\n")
    assert "250-PIPELINING" in c.reply()
    # MAIL, RCPT, RCPT and DATA in one write (DATA ends the group)...
    c.send(b"MAIL FROM:<alice@example.org>\r\n"
           + f"RCPT TO:<{USER1}@localhost>\r\nRCPT TO:<{USER2}@localhost>\r\nDATA\r\n".encode())
    assert [c.reply()[0][:3] for _ in range(4)] == ["250", "250", "250", "354"]
    # ... the content after the 354, then the next transaction riding behind the end of
    # data (content may start a group, RFC 2920 3.1).
    c.send(b"Subject: pipelined\r\n\r\nfirst\r\n.\r\nRSET\r\nMAIL FROM:<alice@example.org>\r\n"
           + f"RCPT TO:<{USER1}@localhost>\r\nDATA\r\n".encode())
    replies = [c.reply()[0] for _ in range(5)]
    assert replies[0].startswith("250 2.0.0 Ok: queued as "), replies
    assert [r[:3] for r in replies[1:]] == ["250", "250", "250", "354"], replies
    c.send(b"Subject: second\r\n\r\nsecond\r\n.\r\n")
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued as ")
    c.send(b"QUIT\r\n")
    assert c.rest() == ["221 2.0.0 Bye"]
    c.close()
    wait_for(lambda: len(maildir_messages(USER1)) >= 2, what="both messages")
    bodies = b"".join(m for _, m in maildir_messages(USER1))
    assert b"first" in bodies and b"second" in bodies
    assert "improper command pipelining" not in inst.log_text()


def test_the_guard_can_be_turned_off(make_instance):
    # smtpd_forbid_unauth_pipelining = no: logged only, the session goes on.
    inst = make_instance(main_extra={"smtpd_forbid_unauth_pipelining": "no"})
    c = Raw(inst.port)
    assert c.reply()[0].startswith("220")
    c.send(b"EHLO x\r\nNOOP\r\nQUIT\r\n")
    lines = c.rest()
    assert lines[-2:] == ["250 2.0.0 Ok", "221 2.0.0 Bye"], lines
    c.close()
    wait_for(lambda: "improper command pipelining after EHLO" in inst.log_text(),
             what="the log line")
