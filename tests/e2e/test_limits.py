"""smtpd's limits end to end (issue 3, "What must be shown" 7): 1001 recipients, an
oversized message, a 100 KB command line, a slowloris client, 200 parallel connections
from one client (anvil), the pre-greeting check and the error limits; each gets its
documented reply while the server keeps serving other clients.

Tests connect from 127.0.0.1, which is in mynetworks and so in Postfix's default
smtpd_client_event_limit_exceptions and smtpd_forbid_bare_newline_exclusions: the
tests that need a limit to apply set the exceptions empty."""

import re
import socket
import threading
import time

from harness import maildir_messages, read_reply, wait_for
from harness import USER1, USER2


class Client:
    """A line-at-a-time SMTP client on a raw socket."""

    def __init__(self, port, source=None, timeout=20):
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.f = self.sock.makefile("rb")
        self.greeting = read_reply(self.f)

    def cmd(self, line):
        self.sock.sendall(line if isinstance(line, bytes) else line.encode() + b"\r\n")
        return read_reply(self.f)

    def close(self):
        self.f.close()
        self.sock.close()


def deliver_one(inst, source, user, subject):
    """A complete transaction from `source`; the server must still serve it."""
    c = Client(inst.port, source=source)
    try:
        assert c.greeting[0].startswith("220"), c.greeting
        assert c.cmd("EHLO other.test")[-1].startswith("250")
        assert c.cmd("MAIL FROM:<other@example.org>")[0].startswith("250")
        assert c.cmd(f"RCPT TO:<{user}@localhost>")[0].startswith("250")
        assert c.cmd("DATA")[0].startswith("354")
        reply = c.cmd(f"Subject: {subject}\r\n\r\nstill serving\r\n.\r\n".encode())
        assert reply[0].startswith("250 2.0.0 Ok: queued"), reply
        c.cmd("QUIT")
    finally:
        c.close()


def test_1001_recipients(make_instance):
    inst = make_instance()
    c = Client(inst.port)
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    # Pipelined: 1001 RCPT commands in one write.
    c.sock.sendall(b"".join(f"RCPT TO:<r{i}@remote.example>\r\n".encode() for i in range(1001)))
    replies = [read_reply(c.f)[0] for _ in range(1001)]
    assert all(r == "250 2.1.5 Ok" for r in replies[:1000]), set(replies[:1000])
    assert replies[1000] == "452 4.5.3 Error: too many recipients"
    assert c.cmd("RSET") == ["250 2.0.0 Ok"]
    c.cmd("QUIT")
    c.close()


def test_oversized_message(make_instance):
    inst = make_instance(main_extra={"message_size_limit": "20000"})
    c = Client(inst.port)
    assert c.cmd("EHLO c.test")[1:3] == ["250-PIPELINING", "250-SIZE 20000"]
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=30000") == [
        "552 5.3.4 Message size exceeds fixed limit"]
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd(f"RCPT TO:<{USER1}@localhost>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 40
    assert c.cmd(big + b".\r\n") == ["552 5.3.4 Error: message file too big"]
    # The session is still in sync and usable.
    assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    c.close()
    assert "552 5.3.4 Error: message file too big" in inst.log_text()
    deliver_one(inst, None, USER1, "after big")
    wait_for(lambda: maildir_messages(USER1), what="the small message")
    assert len(maildir_messages(USER1)) == 1


def test_100kb_command_line_keeps_the_session_in_sync(make_instance):
    inst = make_instance()
    c = Client(inst.port)
    assert c.cmd(b"MAIL FROM:<" + b"a" * 100_000 + b"@example.org>\r\n") == [
        "500 5.5.2 Error: line too long"]
    assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    # NUL bytes neither crash nor desynchronize.
    assert c.cmd(b"NO\x00OP\r\n")[0].startswith("500 5.5.2")
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]
    c.close()


def test_slowloris_gets_a_timeout_while_others_are_served(make_instance):
    inst = make_instance(main_extra={"smtpd_timeout": "3s"})
    slow = Client(inst.port)
    slow.sock.sendall(b"EHLO slow.test\r\n")
    read_reply(slow.f)
    slow.sock.sendall(b"MAIL FR")  # ... and never finishes the line
    started = time.time()
    deliver_one(inst, "127.0.0.2", USER2, "meanwhile")
    reply = read_reply(slow.f)
    waited = time.time() - started
    assert reply == ["421 4.4.2 mx.rostfix.test Error: timeout exceeded"], reply
    assert 2 <= waited < 15, waited
    slow.close()
    wait_for(lambda: maildir_messages(USER2), what="the other client's message")
    # EHLO was the last complete command: Postfix names it, not the half line after it.
    assert "timeout after EHLO from unknown[127.0.0.1]" in inst.log_text()


def test_200_parallel_connections_from_one_client(make_instance):
    inst = make_instance(main_extra={
        "smtpd_client_connection_count_limit": "10",
        "smtpd_client_event_limit_exceptions": "",
    })
    held, answers, lock = [], [], threading.Lock()

    def connect():
        try:
            c = Client(inst.port, timeout=60)
        except OSError as e:
            with lock:
                answers.append(f"error {e}")
            return
        with lock:
            answers.append(c.greeting[0] if c.greeting else "closed")
            if c.greeting and c.greeting[0].startswith("220"):
                held.append(c)
            else:
                c.close()

    threads = [threading.Thread(target=connect) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    try:
        assert len(answers) == 200
        greeted = [a for a in answers if a.startswith("220")]
        refused = [a for a in answers if a.startswith("421")]
        assert len(greeted) == 10, (len(greeted), set(answers))
        assert set(refused) == {"421 4.7.0 mx.rostfix.test Error: too many connections from 127.0.0.1"}
        assert len(refused) == 190
        # Another client is served meanwhile, and the held sessions still work.
        deliver_one(inst, "127.0.0.2", USER2, "while 10 are held")
        assert held[0].cmd("NOOP") == ["250 2.0.0 Ok"]
    finally:
        for c in held:
            c.close()
    assert "Connection concurrency limit exceeded: 11 from" in inst.log_text()
    # Once the held sessions are gone, the client may connect again.
    wait_for(lambda: Client(inst.port).greeting[0].startswith("220"), what="the count to drop")


def test_connection_and_message_rate_limits(make_instance):
    inst = make_instance(main_extra={
        "smtpd_client_connection_rate_limit": "3",
        "smtpd_client_message_rate_limit": "1",
        "smtpd_client_event_limit_exceptions": "",
    })
    c = Client(inst.port)
    assert c.cmd("MAIL FROM:<a@example.org>")[0].startswith("250")
    assert c.cmd("RSET")[0].startswith("250")
    assert c.cmd("MAIL FROM:<a@example.org>") == ["450 4.7.1 Error: too much mail from 127.0.0.1"]
    c.close()
    # The harness's readiness probe connected too, so count from what we see: the
    # first connections are greeted, then every one past the rate is refused.
    greetings = []
    for _ in range(6):
        c = Client(inst.port)
        greetings.append(c.greeting[0])
        c.close()
    refused = "421 4.7.0 mx.rostfix.test Error: too many connections from 127.0.0.1"
    assert greetings[0].startswith("220"), greetings
    first = greetings.index(refused)
    assert all(g == refused for g in greetings[first:]), greetings
    assert re.search(r"Connection rate limit exceeded: \d+ from", inst.log_text())


def test_pregreet_talkers_are_rejected(make_instance):
    inst = make_instance(main_extra={"rostfix_smtpd_greet_pause": "1s"})
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=20)
    s.sendall(b"EHLO impatient.test\r\n")
    f = s.makefile("rb")
    assert read_reply(f) == ["554 5.5.1 Error: SMTP protocol synchronization"]
    assert f.readline() == b""
    s.close()
    started = time.time()
    c = Client(inst.port)
    assert c.greeting[0].startswith("220") and time.time() - started >= 0.9
    c.close()
    assert "PREGREET 21 after" in inst.log_text()


def test_hard_error_limit_hangs_up(make_instance):
    inst = make_instance(main_extra={"smtpd_hard_error_limit": "3", "smtpd_error_sleep_time": "0"})
    c = Client(inst.port)
    for _ in range(3):
        assert c.cmd("XYZZY") == ["502 5.5.2 Error: command not recognized"]
    assert read_reply(c.f) == ["421 4.7.0 mx.rostfix.test Error: too many errors"]
    c.close()
