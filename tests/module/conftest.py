"""Fixtures for the module tests: one test API server per session, one Harness per
test; after every test all captured output is scanned for secrets (docs/security.md L01); sanitizer
and valgrind reports of the helper and the tool fail the test (harness.py)."""
import os
import shutil
import tempfile

import pytest

from harness import Harness, ktest

@pytest.fixture(scope="session")
def api():
    tmp = tempfile.mkdtemp(prefix="kt-api-")
    server = ktest.ApiServer()
    server.start(tmp)
    yield server
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)

@pytest.fixture
def h(api):
    api.clear_faults()
    api.set_clock_offset(0)
    tmp = tempfile.mkdtemp(prefix="kt-mod-")
    os.chmod(tmp, 0o755)
    harness = Harness(api, tmp)
    yield harness
    harness.check_reports()
    harness.scan_for_secrets()
    api.clear_faults()
    shutil.rmtree(tmp, ignore_errors=True)


def pytest_configure(config):
    if os.geteuid() != 0 and "KT_BUILD" not in os.environ:
        raise pytest.UsageError(
            "the module tests as another user than root need a build that trusts that user: "
            "make BUILD=build-user TRUSTED_UID=$(id -u) all test-programs, then KT_BUILD=build-user "
            "(make check-fast does both)")
    config.addinivalue_line(
        "markers", "plain_build_only: measures the memory of the build that ships; deselected "
                   "in the ASan pass, whose allocator quarantine, redzones and interceptors keep "
                   "copies of their own")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KT_SANITIZER") != "1":
        return
    dropped = [i for i in items if i.get_closest_marker("plain_build_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]
