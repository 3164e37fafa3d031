"""Sender-dependent relaying with per-sender SASL (issue 14, "Must be shown": the
newsletter case). Two senders leave through two different smarthosts, each an
aiosmtpd peer requiring STARTTLS and AUTH (tests/e2e/smtp_peer.py) with credentials of
its own: sender_dependent_relayhost_maps picks the smarthost by sender and
smtp_sender_dependent_authentication picks the credentials by sender from
smtp_sasl_password_maps, whose keys here are senders only (no next-hop key), so a
client that ignored the sender would have no credentials at all."""

import os
import re
import shutil

import pytest

from harness import USER2, wait_for
from peers import certs, start_peer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def table(workdir, name, rows, mode=0o644):
    t = workdir / f"{name}-{os.getpid()}"
    t.write_text("".join(f"{k} {v}\n" for k, v in rows))
    os.chmod(t, mode)
    return t


def sender_instance(make_instance, workdir, relays, passwords, **extra):
    return make_instance(main_extra={
        **extra,
        "sender_dependent_relayhost_maps": f"texthash:{table(workdir, 'sdrh', relays)}",
        "smtp_sasl_auth_enable": "yes",
        "smtp_sender_dependent_authentication": "yes",
        "smtp_sasl_password_maps":
            f"texthash:{table(workdir, 'sasl_passwd', passwords, 0o600)}",
        "smtp_sasl_security_options": "noanonymous",
        "smtp_tls_security_level": "encrypt",
        # news+issue7@ finds news@ (mail_addr_find drops the extension).
        "recipient_delimiter": "+",
    })


def test_two_senders_two_smarthosts_two_logins(make_instance, workdir, certs, start_peer):
    news = start_peer(certs / "self.pem", certs / "self.key", auth="newsuser:news-pw")
    shop = start_peer(certs / "self.pem", certs / "self.key", auth="shopuser:shop-pw")
    inst = sender_instance(make_instance, workdir, [
        ("news@example.org", f"[127.0.0.1]:{news.port}"),
        ("@shop.example", f"[127.0.0.1]:{shop.port}"),
    ], [
        ("news@example.org", "newsuser:news-pw"),
        ("@shop.example", "shopuser:shop-pw"),
    ])
    with inst.smtp() as s:
        s.sendmail("news+issue7@example.org", [f"{USER2}@readers.test"],
                   b"Subject: newsletter\r\n\r\nnews\r\n")
        s.sendmail("orders@shop.example", [f"{USER2}@buyers.test"],
                   b"Subject: your order\r\n\r\nshop\r\n")
    got_news = wait_for(news.messages, timeout=30, what="the newsletter at its smarthost")
    got_shop = wait_for(shop.messages, timeout=30, what="the order at its smarthost")
    assert len(got_news) == 1 and len(got_shop) == 1
    assert b"tls=yes auth=newsuser" in got_news[0] and b"Subject: newsletter" in got_news[0]
    assert b"tls=yes auth=shopuser" in got_shop[0] and b"Subject: your order" in got_shop[0]
    inst.wait_queue_empty()
    log = inst.log_text()
    assert re.search(rf"to=<{USER2}@readers\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                     rf"{news.port}, .*status=sent", log), log
    assert re.search(rf"to=<{USER2}@buyers\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                     rf"{shop.port}, .*status=sent", log), log
    assert "news-pw" not in log and "shop-pw" not in log


def test_no_session_reuse_across_senders(make_instance, workdir, certs, start_peer):
    """One smarthost, two senders: the first sender's credentials are right, the
    second's are wrong. A session logged in for the first sender must not carry the
    second sender's mail (Postfix disables connection caching with sender-dependent
    authentication): the second is deferred with the server's 535."""
    peer = start_peer(certs / "self.pem", certs / "self.key", auth="gooduser:good-pw")
    inst = sender_instance(make_instance, workdir, [
        ("@good.example", f"[127.0.0.1]:{peer.port}"),
        ("@bad.example", f"[127.0.0.1]:{peer.port}"),
    ], [
        ("@good.example", "gooduser:good-pw"),
        ("@bad.example", "baduser:bad-pw"),
    ],
        # A session idle this long would be reused for the next message if caching
        # were on: the second message follows well within it.
        smtp_connection_cache_time_limit="60s",
        smtp_connection_reuse_time_limit="300s")
    with inst.smtp() as s:
        s.sendmail("a@good.example", [f"{USER2}@one.test"], b"Subject: good\r\n\r\nx\r\n")
    msgs = wait_for(peer.messages, timeout=30, what="the good sender's mail")
    wait_for(lambda: "status=sent" in inst.log_text(), what="the first delivery logged")
    with inst.smtp() as s:
        s.sendmail("b@bad.example", [f"{USER2}@two.test"], b"Subject: bad\r\n\r\nx\r\n")
    wait_for(lambda: inst.queue_ids("deferred"), timeout=30, what="the bad sender deferred")
    msgs = peer.messages()
    assert len(msgs) == 1 and b"Subject: good" in msgs[0], msgs
    log = inst.log_text()
    assert re.search(rf"to=<{USER2}@two\.test>, .*dsn=4\.7\.8, status=deferred \(SASL "
                     r"authentication failed", log), log
