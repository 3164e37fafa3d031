"""pytest fixtures: test users for the session, a fresh instance per test."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if harness.is_root():
        return
    skip = pytest.mark.skip(reason="end-to-end tests start master as root: run `make test` as root")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def workdir():
    """A session folder every user can traverse (homes and instances live here)."""
    base = Path(tempfile.mkdtemp(prefix="rostfix-e2e-session-"))
    os.chmod(base, 0o755)
    homes = base / "home"
    homes.mkdir()
    os.chmod(homes, 0o755)
    if harness.is_root():
        harness.ensure_system_users(homes)
    yield base
    if harness.is_root():
        harness.remove_test_users()
    if os.environ.get("ROSTFIX_KEEP") is None:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"\nROSTFIX_KEEP: instances kept under {base}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, so fixtures can tell a failed test."""
    outcome = yield
    setattr(item, "rep_" + outcome.get_result().when, outcome.get_result())


# How much of a failed test's maillog is printed: enough to see what the instance
# did last, which is all a CI log keeps once the instance folder is removed.
FAILED_LOG_LINES = 80


@pytest.fixture
def make_instance(workdir, request):
    """Factory: make_instance(main_extra={...}) -> a started Instance, stopped at the end."""
    made = []

    def factory(main_extra=None, master_extra="", start=True):
        for user in harness.TEST_USERS:
            harness.reset_maildir(user)
        inst = harness.Instance(workdir, main_extra, master_extra)
        made.append(inst)
        if start:
            inst.start()
        return inst

    yield factory
    call = getattr(request.node, "rep_call", None)
    failed = call is not None and call.failed
    for inst in made:
        inst.stop()
        if failed:
            tail = inst.log_text().splitlines()[-FAILED_LOG_LINES:]
            print(f"\n--- last {len(tail)} lines of {inst.maillog} ---", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)
        inst.forget()
        if os.environ.get("ROSTFIX_KEEP") is None:
            shutil.rmtree(inst.base, ignore_errors=True)


@pytest.fixture
def instance(make_instance):
    return make_instance()
