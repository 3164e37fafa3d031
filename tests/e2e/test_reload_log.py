"""A routine `rostfix reload` logs nothing alarming (issue 16): the retired qmgr used
to log "master is gone: finishing N deliveries in flight" although master was alive
and had just started its successor. That line is for a master that really died."""

from harness import wait_for


def qmgr_pids(inst):
    return {pid for pid, name in inst.processes().items() if name == "qmgr"}


def test_reload_logs_no_master_is_gone(instance):
    old = wait_for(lambda: qmgr_pids(instance), what="the first qmgr")
    before = len(instance.log_text())
    instance.cmd("rostfix", "reload")
    wait_for(lambda: "reload -- version" in instance.log_text(), what="master's reload line")
    # The old qmgr notices the reload, finishes its (no) deliveries and exits: whatever
    # it had to say is in the log by then.
    wait_for(lambda: not (qmgr_pids(instance) & old), timeout=30,
             what="the old qmgr to exit")
    after = instance.log_text()[before:]
    assert "master is gone" not in after, after
    for word in ("warning:", "error:", "fatal:", "panic:"):
        assert word not in after, after
