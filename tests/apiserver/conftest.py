"""Shared fixtures: one server per test module, private HOMEs for kubectl."""
import os
import shutil
import subprocess

import pytest

from ktest import ApiServer

KUBECTL = shutil.which("kubectl", path="/usr/bin")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ApiServer().start(str(tmp_path_factory.mktemp("apiserver"))) as srv:
        yield srv


@pytest.fixture
def fresh(server):
    """The module's server with no faults, clock offset or request log left by earlier tests."""
    server.clear_faults()
    server.set_clock_offset(0)
    server.set_config(anonymous_quirk=False, k8s_version="1.31.4")
    server.reset_requests()
    return server


@pytest.fixture
def kubectl(server, tmp_path):
    """Runs /usr/bin/kubectl against the server with a HOME of its own (the dispatcher caches /version)."""
    if KUBECTL is None:
        pytest.skip("kubectl not installed")

    def run(*args, token=None, stdin=None):
        env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "KUBECONFIG": server.kubeconfig}
        argv = [KUBECTL, *args] + (["--token", token] if token else [])
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)
    return run
