"""Identity and access with the real kubectl: can-i, whoami, create token, get cs."""

from __future__ import annotations

import base64
import json

import yaml

from tests.e2e.conftest import wait_for


def test_auth_can_i_answers_yes_and_no(server):
    yes = server.kubectl("auth", "can-i", "create", "deployments")
    assert yes.stdout.strip() == "yes"
    no = server.kubectl("auth", "can-i", "list", "pods", "--as", "jane", check=False)
    assert no.returncode == 1 and no.stdout.strip() == "no"
    listing = server.kubectl("auth", "can-i", "--list", "--as", "jane").stdout
    assert "selfsubjectaccessreviews.authorization.k8s.io" in listing


def test_auth_whoami(server):
    out = server.kubectl("auth", "whoami").stdout
    assert "system:admin" in out and "[system:masters system:authenticated]" in out
    review = json.loads(server.kubectl("auth", "whoami", "--as", "jane", "-o", "json").stdout)
    assert review["status"]["userInfo"]["username"] == "jane"


def token_kubeconfig(server, token: str, path):
    """A copy of the admin kubeconfig whose user is only the bearer token."""
    config = yaml.safe_load(server.kubeconfig.read_text())
    config["users"] = [{"name": "sa", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "sa"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_create_token_gives_a_working_service_account_token(server, tmp_path):
    server.kubectl("create", "serviceaccount", "token-user")
    token = server.kubectl("create", "token", "token-user", "--duration", "20m").stdout.strip()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:default:token-user"
    assert claims["exp"] - claims["iat"] == 1200
    # The token authenticates; the policy before RBAC lets it only ask about itself.
    as_sa = token_kubeconfig(server, token, tmp_path / "sa.yaml")
    who = server.kubectl("auth", "whoami", f"--kubeconfig={as_sa}").stdout
    assert "system:serviceaccount:default:token-user" in who
    denied = server.kubectl("get", "pods", f"--kubeconfig={as_sa}", check=False)
    assert denied.returncode != 0
    assert 'User "system:serviceaccount:default:token-user" cannot list resource "pods"' in denied.stderr
    too_short = server.kubectl("create", "token", "token-user", "--duration", "1m", check=False)
    assert "may not specify a duration less than 10 minutes" in too_short.stderr


def test_get_componentstatuses(server):
    def statuses():
        result = server.kubectl("get", "cs")
        assert "v1 ComponentStatus is deprecated in v1.19+" in result.stderr
        return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}

    # The scheduler and controller-manager are healthy once they hold their leader Leases.
    rows = wait_for(lambda: (r := statuses()) and set(r.values()) == {"Healthy"} and r, timeout=20,
                    what="all components Healthy")
    assert set(rows) == {"scheduler", "controller-manager", "etcd-0"}
