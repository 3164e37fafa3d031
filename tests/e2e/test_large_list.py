"""One list message to many recipients (issue 18): qmgr holds a slice of its
recipients at a time (crates/qmgr/src/manager/slices.rs) and a kill -9 of the whole
suite in the middle loses no recipient.

qmgr_message_recipient_limit is set to 200 here, so slices hold 200 recipients and the
20 000 recipients of the message take a hundred of them."""

import time
from collections import Counter

from harness import free_port, wait_for, write_table
from smtpsink import Sink

RCPTS = 20_000
LIMIT = 200
# The smtp client's requests: at most smtp_destination_recipient_limit (50) recipients
# each, and as many at once as the destination's concurrency limit (20) allows.
IN_FLIGHT_BOUND = 20 * 50


def received(sink):
    with sink.lock:
        return Counter(r for _, rcpts, _ in sink.messages for r in rcpts)


def send_list(inst, rcpts):
    with inst.smtp() as s:
        s.ehlo("lists.example.org")
        s.sendmail("list-bounces@example.org", rcpts,
                   b"From: list@example.org\r\nSubject: issue 42\r\n\r\nnews\r\n")


def test_a_list_message_is_held_a_slice_at_a_time_and_survives_kill_9(make_instance,
                                                                        workdir):
    port = free_port()
    sink = Sink(port)
    transport = write_table(workdir, "transport", [("list.test", f"smtp:[127.0.0.1]:{port}")])
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{transport}",
        "qmgr_message_recipient_limit": str(LIMIT),
        "smtpd_recipient_limit": str(RCPTS),
    })
    rcpts = [f"u{i}@list.test" for i in range(RCPTS)]
    try:
        send_list(inst, rcpts)
        wait_for(lambda: sum(received(sink).values()) >= RCPTS // 10, timeout=120,
                 interval=0.02, what="a tenth of the list to be delivered")
        inst.kill_leftovers()
        wait_for(lambda: not inst.pids(), what="every process of the instance to die")
        before = received(sink)
        assert sum(before.values()) < RCPTS, "delivery ended before the kill: test nothing"
        log = inst.log_text()
        assert f"more than {LIMIT} pending recipients: read {LIMIT} at a time" in log

        inst.start()
        wait_for(lambda: len(received(sink)) >= RCPTS, timeout=300, interval=0.5,
                 what="every recipient to be delivered after the restart")
        inst.wait_queue_empty(timeout=60)
        time.sleep(1)
        after = received(sink)
    finally:
        sink.stop()
    lost = [r for r in rcpts if r not in after]
    assert not lost, f"{len(lost)} recipients lost, e.g. {lost[:5]}"
    twice = {r: n for r, n in after.items() if n > 1}
    # Only recipients in flight at the kill may be delivered again: every done mark
    # written before it holds, and each slice after the restart starts from the file.
    assert len(twice) <= IN_FLIGHT_BOUND, f"{len(twice)} delivered twice"
    assert all(n == 2 for n in twice.values()), twice
    print(f"\nlarge list: {sum(before.values())} of {RCPTS} delivered before the kill, "
          f"{len(twice)} delivered twice")
