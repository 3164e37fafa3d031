"""postscreen's STARTTLS and its post-screening queue.

A sender that insists on TLS must be able to pass postscreen's deep protocol tests
over TLS (postscreen_tls_security_level, default $smtpd_tls_security_level): the
engine offers STARTTLS with smtpd's certificate, runs the dialogue over TLS, discards
plaintext pipelined behind STARTTLS, and at `encrypt` refuses MAIL before it with 530.
postscreen_post_queue_limit bounds the clients handed to smtpd and not yet taken by an
smtpd process: one more is told 421 4.3.2 at CONNECT."""

import re
import smtplib
import socket
import ssl

from harness import USER1, maildir_messages, read_reply, wait_for
from peers import make_ca_and_server_cert

RCPT = f"{USER1}@mx.rostfix.test"


def screened(make_instance, main_extra, smtpd_maxproc="-", postscreen="postscreen"):
    """postscreen on the instance's port, smtpd behind it as `pass`."""
    inst = make_instance(main_extra={"postscreen_greet_wait": "1s",
                                     "mynetworks": "192.0.2.1/32", **main_extra},
                         start=False)
    master = inst.conf / "master.cf"
    text = master.read_text()
    smtpd_line = f"127.0.0.1:{inst.port} inet n - y - - smtpd\n"
    assert smtpd_line in text
    master.write_text(text.replace(
        smtpd_line,
        f"127.0.0.1:{inst.port} inet n - y - 1 {postscreen}\n"
        f"smtpd     pass  -       -       y       -       {smtpd_maxproc}       smtpd\n"))
    inst.start()
    return inst


def tls_settings(tmp_path, level):
    certs = make_ca_and_server_cert(tmp_path)
    for name in ("server.pem", "server.key", "ca.pem"):
        (certs / name).chmod(0o644)
    return certs, {
        "postscreen_tls_security_level": level,
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": str(certs / "server.pem"),
        "smtpd_tls_key_file": str(certs / "server.key"),
        "smtpd_tls_loglevel": "1",
        "postscreen_pipelining_enable": "yes",
        "postscreen_pipelining_action": "enforce",
    }


def client_context(certs):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    return ctx


def test_deep_tests_pass_over_starttls_and_the_client_then_reaches_smtpd(
        make_instance, tmp_path):
    certs, extra = tls_settings(tmp_path, "may")
    inst = screened(make_instance, extra)
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.5", 0)) as s:
        port = s.sock.getsockname()[1]
        s.ehlo("tls.example")
        assert s.has_extn("starttls"), s.esmtp_features
        assert not s.has_extn("pipelining")
        code, _ = s.starttls(context=client_context(certs))
        assert code == 220
        s.ehlo("tls.example")
        # Over TLS STARTTLS is no longer offered, and the dialogue goes on.
        assert not s.has_extn("starttls"), s.esmtp_features
        assert s.mail("a@example.org")[0] == 250
        code, text = s.rcpt(RCPT)
        # Passing the deep tests at RCPT means "come back later".
        assert code == 450 and text.startswith(b"4.3.2"), (code, text)
    wait_for(lambda: f"PASS NEW [127.0.0.5]:{port}" in inst.log_text(),
             what="PASS NEW after the tests over TLS")
    log = inst.log_text()
    assert re.search(r"postscreen\[\d+\]: Anonymous TLS connection established from "
                     rf"\[127\.0\.0\.5\]:{port}: TLSv1\.[23] with cipher \S+", log), log

    # Remembered: the next connection is smtpd's, which offers STARTTLS itself.
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.5", 0)) as s:
        s.ehlo("tls.example")
        assert s.has_extn("pipelining")  # smtpd's EHLO, not postscreen's
        s.starttls(context=client_context(certs))
        s.ehlo("tls.example")
        s.sendmail("a@example.org", [RCPT], b"Subject: after postscreen\r\n\r\nover TLS\r\n")
    msgs = wait_for(lambda: maildir_messages(USER1), what="delivery after PASS OLD")
    assert b"over TLS" in msgs[0][1]
    assert "PASS OLD [127.0.0.5]" in inst.log_text()


def test_plaintext_pipelined_behind_starttls_is_discarded(make_instance, tmp_path):
    certs, extra = tls_settings(tmp_path, "may")
    inst = screened(make_instance, extra)
    sock = socket.create_connection(("127.0.0.1", inst.port), timeout=30,
                                    source_address=("127.0.0.6", 0))
    with sock:
        port = sock.getsockname()[1]
        f = sock.makefile("rb")
        assert read_reply(f)[-1].startswith("220 ")
        sock.sendall(b"EHLO inject.example\r\n")
        assert "250-STARTTLS" in read_reply(f)
        # The injection: a command behind STARTTLS in the same packet.
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        assert read_reply(f) == ["220 2.0.0 Ready to start TLS"]
        with client_context(certs).wrap_socket(sock, server_hostname="localhost") as tls:
            tf = tls.makefile("rb")
            # Had the plaintext MAIL been kept, this RCPT would be accepted as its
            # sequel; the engine instead knows neither HELO nor MAIL any more.
            tls.sendall(f"RCPT TO:<{RCPT}>\r\n".encode())
            assert read_reply(tf) == ["503 5.5.1 Error: need MAIL command"]
            tls.sendall(b"QUIT\r\n")
            assert read_reply(tf) == ["221 2.0.0 Bye"]
    wait_for(lambda: re.search(r"discarded \d+ bytes of pipelined plaintext after STARTTLS "
                               rf"from \[127\.0\.0\.6\]:{port}", inst.log_text()),
             what="the discarded-plaintext line")


def test_encrypt_level_refuses_mail_before_starttls(make_instance, tmp_path):
    certs, extra = tls_settings(tmp_path, "encrypt")
    inst = screened(make_instance, extra)
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30,
                      source_address=("127.0.0.7", 0)) as s:
        s.ehlo("clear.example")
        assert s.has_extn("starttls")
        assert s.mail("a@example.org") == (530, b"5.7.0 Must issue a STARTTLS command first")
        assert s.noop()[0] == 250
        s.starttls(context=client_context(certs))
        s.ehlo("clear.example")
        assert s.mail("a@example.org")[0] == 250


def test_post_queue_limit_turns_clients_away_while_smtpd_is_busy(make_instance):
    # Every client is in mynetworks and allowlisted: each is handed to smtpd at once.
    # One smtpd process at most, and room for one client waiting for it. postscreen -v
    # logs each client entering and leaving the post-screening queue: the test waits
    # on those lines, not on timing.
    inst = screened(make_instance, {"mynetworks": "127.0.0.0/8",
                                    "postscreen_post_queue_limit": "1"},
                    smtpd_maxproc="1", postscreen="postscreen -v")

    def logged(pattern):
        return re.search(pattern, inst.log_text()) is not None

    first = socket.create_connection(("127.0.0.1", inst.port), timeout=30)
    ff = first.makefile("rb")
    assert read_reply(ff)[0].startswith("220 ")  # smtpd's greeting: it holds smtpd
    first_port = first.getsockname()[1]
    wait_for(lambda: logged(rf"\[127\.0\.0\.1\]:{first_port}: taken by service"),
             what="the first client taken by smtpd")
    # The second waits in the post-screening queue: nothing answers it yet.
    second = socket.create_connection(("127.0.0.1", inst.port), timeout=30)
    second_port = second.getsockname()[1]
    wait_for(lambda: logged(rf"\[127\.0\.0\.1\]:{second_port}: post-screening queue 1 "),
             what="the second client in the post-screening queue")
    # The third finds the queue full.
    third = socket.create_connection(("127.0.0.1", inst.port), timeout=30)
    with third:
        third_port = third.getsockname()[1]
        assert read_reply(third.makefile("rb")) == ["421 4.3.2 All server ports are busy"]
    assert (f"NOQUEUE: reject: CONNECT from [127.0.0.1]:{third_port}: "
            f"all server ports busy") in inst.log_text()
    # The first leaves; smtpd takes the second, which leaves the queue.
    first.sendall(b"QUIT\r\n")
    assert read_reply(ff)[0].startswith("221")
    first.close()
    with second:
        assert read_reply(second.makefile("rb"))[0].startswith("220 ")
        second.sendall(b"QUIT\r\n")
    wait_for(lambda: logged(rf"\[127\.0\.0\.1\]:{second_port}: taken by service"),
             what="the second client taken by smtpd")
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30) as s:
        assert s.noop()[0] == 250
