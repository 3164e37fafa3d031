"""smtpd's protocol completeness and smuggling resistance, end to end over raw sockets
(issue 3, "What must be shown" 4 and 5): a whole transaction in one write, SMTP
smuggling sequences, bare LF refusal, BDAT, and the DSN/SMTPUTF8/BODY parameters as
they land in the queue file.

These scripts send a whole session in one write to exercise the parser and the DATA
machine, which RFC 2920 does not allow (the client must wait after EHLO, DATA, NOOP...):
smtpd_forbid_unauth_pipelining, on by default, would hang up at the EHLO. They run with
it off (PIPELINING below); the guard itself is tested in test_pipelining.py."""

import socket
import time
from pathlib import Path

import harness
from harness import maildir_messages, wait_for
from harness import USER1


# The pre-3.9 Postfix behaviour: improper pipelining is logged, not refused.
PIPELINING = {"smtpd_forbid_unauth_pipelining": "no"}


def converse(port, data, timeout=20.0, source=None, wait_greeting=True):
    """Sends `data` (bytes) in ONE write after the greeting, reads until the server
    closes or goes quiet for 3 s; returns the reply lines (greeting included)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        got = b""
        if wait_greeting:
            got = s.recv(4096)
        s.sendall(data)
        s.settimeout(3.0)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        return got.decode(errors="replace").split("\r\n")[:-1]
    finally:
        s.close()


def codes(lines):
    return [line[:3] for line in lines]


def parse_queue_file(path):
    """The records of a queue file (docs/queue-format.md): [(type, payload bytes)]."""
    data = Path(path).read_bytes()
    i, out = 0, []
    while i < len(data):
        kind = chr(data[i])
        i += 1
        length, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((kind, data[i:i + length]))
        i += length
    return out


def test_whole_transaction_in_one_write(make_instance):
    inst = make_instance(main_extra=PIPELINING)
    script = (f"EHLO client.test\r\nMAIL FROM:<alice@example.org>\r\n"
              f"RCPT TO:<{USER1}@localhost>\r\nRCPT TO:<nobody@elsewhere.invalid>\r\n"
              f"DATA\r\nSubject: one write\r\n\r\nall at once\r\n.\r\nNOOP\r\nQUIT\r\n").encode()
    lines = converse(inst.port, script)
    ehlo_end = next(i for i, l in enumerate(lines) if l.startswith("250 "))
    ehlo = lines[:ehlo_end + 1]
    assert "250-PIPELINING" in ehlo and any(l[4:] == "CHUNKING" for l in ehlo), ehlo
    assert codes(lines[ehlo_end + 1:]) == ["250", "250", "250", "354", "250", "250", "221"], lines
    assert lines[ehlo_end + 5].startswith("250 2.0.0 Ok: queued as ")
    wait_for(lambda: maildir_messages(USER1), what="delivery")
    assert b"all at once" in maildir_messages(USER1)[0][1]


SMUGGLES = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"]


def smuggle_script(seq, tag):
    return (b"EHLO client.test\r\nMAIL FROM:<alice@example.org>\r\n"
            + f"RCPT TO:<{USER1}@localhost>\r\nDATA\r\n".encode()
            + f"Subject: smuggle {tag}\r\n\r\nbefore".encode() + seq
            + b"MAIL FROM:<evil@attacker.test>\r\n"
            + f"RCPT TO:<{USER1}@localhost>\r\nDATA\r\nSubject: smuggled {tag}\r\n\r\nevil\r\n".encode()
            + b".\r\nQUIT\r\n")


def test_smuggling_sequences_never_split_a_message(make_instance):
    # From 127.0.0.1, inside smtpd_forbid_bare_newline_exclusions ($mynetworks): the
    # sequences are content, and each session yields exactly one message.
    inst = make_instance(main_extra=PIPELINING)
    for n, seq in enumerate(SMUGGLES):
        lines = converse(inst.port, smuggle_script(seq, n))
        assert sum(1 for l in lines if l.startswith("250 2.0.0 Ok: queued")) == 1, (seq, lines)
        assert lines[-1].startswith("221"), (seq, lines)
    wait_for(lambda: len(maildir_messages(USER1)) >= len(SMUGGLES), what="four deliveries")
    time.sleep(1)
    msgs = maildir_messages(USER1)
    assert len(msgs) == len(SMUGGLES), [m[1][:200] for m in msgs]
    for _, content in msgs:
        assert b"evil" in content and b"MAIL FROM:<evil@attacker.test>" in content
    assert "from=<evil@attacker.test>" not in inst.log_text()


def test_bare_lf_refused_where_the_policy_says(make_instance):
    inst = make_instance(main_extra={**PIPELINING, "smtpd_forbid_bare_newline_exclusions": ""})
    lines = converse(inst.port, smuggle_script(b"\n.\n", "x"))
    assert lines[-1] == "550 5.5.2 mx.rostfix.test Error: bare <LF> received", lines
    assert not any(l.startswith("250 2.0.0 Ok: queued") for l in lines)
    # A bare LF in a command line is refused too, and the session ends.
    lines = converse(inst.port, b"EHLO client.test\nMAIL FROM:<a@b>\r\n")
    assert lines[1:] == ["550 5.5.2 mx.rostfix.test Error: bare <LF> received"], lines
    # CR LF clients are unaffected.
    with inst.smtp() as c:
        c.sendmail("alice@example.org", [f"{USER1}@localhost"], b"Subject: ok\r\n\r\nfine\r\n")
    wait_for(lambda: maildir_messages(USER1), what="delivery")
    assert len(maildir_messages(USER1)) == 1
    assert "Error: bare <LF> received" in inst.log_text()


def test_bdat_over_a_raw_socket_delivers_intact(make_instance):
    inst = make_instance(main_extra=PIPELINING)
    body = (b"Subject: chunked\r\n\r\n.a line starting with a dot\r\n\r\n.\r\n"
            b"MAIL FROM:<evil@attacker.test>\r\nend\r\n")
    first, second = body[:25], body[25:]
    script = (b"EHLO client.test\r\nMAIL FROM:<alice@example.org> BODY=8BITMIME\r\n"
              + f"RCPT TO:<{USER1}@localhost>\r\n".encode()
              + f"BDAT {len(first)}\r\n".encode() + first
              + f"BDAT {len(second)} LAST\r\n".encode() + second + b"QUIT\r\n")
    lines = converse(inst.port, script)
    tail = lines[-5:]
    assert tail[:3] == ["250 2.1.0 Ok", "250 2.1.5 Ok", f"250 2.0.0 Ok: {len(first)} bytes"], lines
    assert tail[3].startswith("250 2.0.0 Ok: queued as ") and tail[4].startswith("221")
    wait_for(lambda: maildir_messages(USER1), what="delivery")
    content = maildir_messages(USER1)[0][1]
    assert content.endswith(body.replace(b"\r\n", b"\n")), content
    # BDAT 0 LAST after DATA-less MAIL/RCPT, and DATA mixed in, in one session.
    script = (b"MAIL FROM:<a@example.org>\r\n" + f"RCPT TO:<{USER1}@localhost>\r\n".encode()
              + b"BDAT 4\r\nab\r\nDATA\r\nBDAT 0 LAST\r\nQUIT\r\n")
    lines = converse(inst.port, script)
    assert lines[1:] == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: 4 bytes",
                         "503 5.5.1 Error: BDAT and DATA cannot be mixed in one transaction",
                         lines[5], "221 2.0.0 Bye"], lines
    assert lines[5].startswith("250 2.0.0 Ok: queued as ")


def test_dsn_smtputf8_and_body_land_in_the_queue_file(make_instance):
    # Remote mail goes to a relayhost where nothing listens: the message stays in the
    # queue (deferred) and its file can be read.
    inst = make_instance(main_extra={**PIPELINING,
                                     "relayhost": f"[127.0.0.1]:{harness.free_port()}"})
    script = ("EHLO client.test\r\n"
              "MAIL FROM:<alice@example.org> RET=HDRS ENVID=QQ314159+2Bx SMTPUTF8 BODY=8BITMIME\r\n"
              "RCPT TO:<bob@remote.example> NOTIFY=NEVER\r\n"
              "RCPT TO:<jörg@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+40remote.example\r\n"
              "DATA\r\nSubject: dsn\r\n\r\nhi\r\n.\r\nQUIT\r\n").encode()
    lines = converse(inst.port, script)
    assert any(l.startswith("250 2.0.0 Ok: queued") for l in lines), lines
    wait_for(lambda: inst.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    qid = inst.queue_ids("deferred")[0]
    records = parse_queue_file(inst.queue / "deferred" / qid)
    attrs = dict(p.decode().split("=", 1) for k, p in records if k == "A")
    assert attrs["dsn_ret"] == "HDRS"
    assert attrs["dsn_envid"] == "QQ314159+x"
    assert attrs["smtputf8"] == "1"
    assert attrs["body_type"] == "8BITMIME"
    rcpts = {p.decode().split("\0")[0]: p.decode().split("\0") for k, p in records if k in "RD"}
    assert rcpts["bob@remote.example"][2] == "NEVER"
    assert rcpts["jörg@remote.example"][1:] == ["orig@remote.example", "SUCCESS,FAILURE"]


def test_protocol_odds_and_ends(make_instance):
    inst = make_instance(main_extra={**PIPELINING, "disable_vrfy_command": "yes"})
    script = (b"HELP\r\nVRFY root\r\nXYZZY\r\nRCPT TO:<a@localhost>\r\nDATA\r\n"
              b"MAIL FROM:<>\r\nMAIL FROM:<a@b>\r\nRCPT TO:<postmaster>\r\n"
              b"RCPT TO:<\"quoted local\"@remote.example>\r\nRCPT TO:<@a.example,@b.example:postmaster@localhost>\r\n"
              b"MAIL FROM:<m\xc3\xbcller@example.org>\r\nRSET\r\nQUIT\r\n")
    lines = converse(inst.port, script)
    assert lines[1].startswith("214 2.0.0 ")
    assert lines[2:] == [
        "502 5.5.1 VRFY command is disabled",
        "502 5.5.2 Error: command not recognized",
        "503 5.5.1 Error: need MAIL command",
        "503 5.5.1 Error: need RCPT command",
        "250 2.1.0 Ok",
        "503 5.5.1 Error: nested MAIL command",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "503 5.5.1 Error: nested MAIL command",
        "250 2.0.0 Ok",
        "221 2.0.0 Bye",
    ], lines
    # Every reply after the greeting carries an enhanced status code (RFC 2034).
    for line in lines[1:]:
        assert line[4:5].isdigit() and line[5] == ".", line
    lines = converse(inst.port, b"MAIL FROM:<m\xc3\xbcller@example.org>\r\nQUIT\r\n")
    assert lines[1] == "553 5.6.7 Must declare SMTPUTF8 to send unicode address", lines
