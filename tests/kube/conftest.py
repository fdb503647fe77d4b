"""Fixtures of the real-cluster tier: one real control plane (etcd, kube-apiserver,
kube-controller-manager from `make kube`) per test session, and the module tests' Harness
pointed at it. The binaries must be built: a missing one is a failure, not a skip."""
import os
import shutil
import tempfile

import pytest

import cluster
from harness import Harness


@pytest.fixture(scope="session")
def kube():
    missing = cluster.missing_binaries()
    assert not missing, f"not built: {missing} in {cluster.BIN}: run `make kube`"
    tmp = tempfile.mkdtemp(prefix="kt-kube-")
    os.chmod(tmp, 0o755)
    server = cluster.KubeCluster(os.path.join(tmp, "state"))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def h(kube):
    tmp = tempfile.mkdtemp(prefix="kt-kmod-")
    os.chmod(tmp, 0o755)
    harness = Harness(kube, tmp)
    yield harness
    harness.scan_for_secrets()
    shutil.rmtree(tmp, ignore_errors=True)
