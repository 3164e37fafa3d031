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


@pytest.fixture
def make_instance(workdir):
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
    for inst in made:
        inst.stop()
        inst.forget()
        if os.environ.get("ROSTFIX_KEEP") is None:
            shutil.rmtree(inst.base, ignore_errors=True)


@pytest.fixture
def instance(make_instance):
    return make_instance()
