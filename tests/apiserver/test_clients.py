"""Round trips with the real clients: kubectl (through the /usr/bin dispatcher) and python3-kubernetes."""
import json

import pytest

from ktest import TOKENREVIEWS


def test_kubectl_sa_token_and_reviews(fresh, kubectl, tmp_path):
    result = kubectl("create", "serviceaccount", "kc-user", "-n", "kc")
    assert (result.returncode, result.stdout) == (0, "serviceaccount/kc-user created\n")
    result = kubectl("create", "token", "kc-user", "-n", "kc", "--audience", "pam-test", "--duration", "10m")
    token = result.stdout
    assert result.returncode == 0 and token.count(".") == 2 and not token.endswith("\n")
    agents = {r["path"]: r["headers"].get("user-agent", "") for r in fresh.requests()["last"]}
    assert agents["/version"].startswith("kubectl-dispatcher/")
    assert agents["/api/v1/namespaces/kc/serviceaccounts/kc-user/token"].startswith("kubectl/v1.31.")

    review = tmp_path / "tr.json"
    review.write_text(json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                  "spec": {"audiences": ["pam-test"], "token": token}}))
    result = kubectl("create", "-f", str(review), "-o", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)["status"]
    assert status["authenticated"] is True and status["user"]["username"] == "system:serviceaccount:kc:kc-user"
    assert status["audiences"] == ["pam-test"]

    result = kubectl("create", "--raw", TOKENREVIEWS, "-f", "-", stdin=review.read_text())
    assert result.returncode == 0 and json.loads(result.stdout)["status"]["authenticated"] is True
    raw = [r for r in fresh.requests()["last"] if r["path"] == TOKENREVIEWS][-1]
    assert raw["headers"].get("transfer-encoding") == "chunked" and "content-type" not in raw["headers"]

    result = kubectl("create", "token", "kc-user", "-n", "kc", "--duration", "1m")
    assert result.returncode == 1 and result.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
        "Invalid value: 60: may not specify a duration less than 10 minutes")


def test_kubectl_rbac_decides_who_may_review(fresh, kubectl, tmp_path):
    assert kubectl("create", "serviceaccount", "rv", "-n", "kc2").returncode == 0
    reviewer = kubectl("create", "token", "rv", "-n", "kc2").stdout
    body = json.dumps({"spec": {"token": "abc"}})
    result = kubectl("create", "--raw", TOKENREVIEWS, "-f", "-", stdin=body, token=reviewer)
    assert result.returncode == 1 and result.stderr.strip() == (
        'Error from server (Forbidden): tokenreviews.authentication.k8s.io is forbidden: User '
        '"system:serviceaccount:kc2:rv" cannot create resource "tokenreviews" in API group "authentication.k8s.io" '
        "at the cluster scope")
    # A namespaced Role cannot grant a cluster-scoped resource.
    assert kubectl("create", "role", "reviews", "-n", "kc2", "--verb=create",
                   "--resource=tokenreviews.authentication.k8s.io").returncode == 0
    assert kubectl("create", "rolebinding", "reviews", "-n", "kc2", "--role=reviews",
                   "--serviceaccount=kc2:rv").returncode == 0
    assert kubectl("create", "--raw", TOKENREVIEWS, "-f", "-", stdin=body, token=reviewer).returncode == 1
    assert kubectl("create", "clusterrolebinding", "kc2-rv", "--clusterrole=system:auth-delegator",
                   "--serviceaccount=kc2:rv").returncode == 0
    result = kubectl("create", "--raw", TOKENREVIEWS, "-f", "-", stdin=body, token=reviewer)
    assert result.returncode == 0 and json.loads(result.stdout)["status"]["error"] == "invalid bearer token"
    # ...and the Role does grant what is namespaced: TokenRequests for one named SA only.
    assert kubectl("create", "role", "mint-rv", "-n", "kc2", "--verb=create", "--resource=serviceaccounts/token",
                   "--resource-name=rv").returncode == 0
    assert kubectl("create", "rolebinding", "mint-rv", "-n", "kc2", "--role=mint-rv",
                   "--serviceaccount=kc2:rv").returncode == 0
    assert kubectl("create", "token", "rv", "-n", "kc2", token=reviewer).returncode == 0
    result = kubectl("create", "token", "default", "-n", "kc2", token=reviewer)
    assert result.returncode == 1 and 'cannot create resource "serviceaccounts/token"' in result.stderr


def test_kubectl_132_speaks_protobuf(fresh, kubectl):
    fresh.set_config(k8s_version="1.32.4")
    assert kubectl("create", "serviceaccount", "pb-user", "-n", "pb").returncode == 0
    result = kubectl("create", "token", "pb-user", "-n", "pb", "--audience", "A", "--audience", "B",
                     "--duration", "10m")
    assert result.returncode == 0, result.stderr
    sent = [r for r in fresh.requests()["last"] if r["path"].endswith("/token")][-1]
    assert sent["headers"]["content-type"] == "application/vnd.kubernetes.protobuf"
    assert fresh.token_review(result.stdout, ["B"])[1]["status"]["audiences"] == ["B"]


def test_python_kubernetes(fresh):
    pytest.importorskip("kubernetes")
    from kubernetes import client, config
    api_client = config.new_client_from_config(fresh.kubeconfig)
    core, authn = client.CoreV1Api(api_client), client.AuthenticationV1Api(api_client)
    sa = core.create_namespaced_service_account("py", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="py-user")))
    assert sa.metadata.uid
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=["py-aud"], expiration_seconds=600))
    issued = core.create_namespaced_service_account_token("py-user", "py", request)
    assert isinstance(issued, client.AuthenticationV1TokenRequest) and issued.spec.expiration_seconds == 600
    review = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(
        token=issued.status.token, audiences=["py-aud"])))
    assert isinstance(review, client.V1TokenReview) and review.status.authenticated is True
    assert review.status.user.username == "system:serviceaccount:py:py-user"
    assert review.status.user.uid == sa.metadata.uid and review.status.audiences == ["py-aud"]
    review = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="junk")))
    assert review.status.authenticated is None and review.status.error == "invalid bearer token"
    sent = [r for r in fresh.requests()["last"] if r["path"] == TOKENREVIEWS][-1]
    assert json.loads(sent["body"]) == {"spec": {"token": "junk"}}
    names = [s.metadata.name for s in core.list_namespaced_service_account("py").items]
    assert names == ["default", "py-user"]
    core.delete_namespaced_service_account("py-user", "py")
    with pytest.raises(client.exceptions.ApiException) as error:
        core.read_namespaced_service_account("py-user", "py")
    assert error.value.status == 404
