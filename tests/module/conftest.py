"""Fixtures for the module tests: one test API server per session, one Harness per
test; after every test all captured output is scanned for secrets (SECURITY.md L01)."""
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
    harness.scan_for_secrets()
    api.clear_faults()
    shutil.rmtree(tmp, ignore_errors=True)
