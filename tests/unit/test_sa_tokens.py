"""A ServiceAccount token from TokenRequest, and a client that is that account (client/sa_tokens.py)."""

from __future__ import annotations

from k8py.client import Client
from k8py.client.sa_tokens import ServiceAccountToken, client_as
from tests.unit.conftest import TOKEN

WHOAMI = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


async def test_client_as_a_service_account_and_renewal(client):
    admin = Client(str(client.make_url("")).rstrip("/"), token=TOKEN)
    try:
        robot, token = await client_as(admin, "default", "default", "test-agent")
        try:
            review = await robot.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", WHOAMI)
            assert review["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
            # renewal is due at 80% of the life asked for (3600 s)
            assert 2870 < token.renew_in() <= 2880
            first = token.token
            await token.request(admin)            # a renewal hands every client the new token
            assert token.token != first and robot.session.headers["Authorization"] == f"Bearer {token.token}"
            review = await robot.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", WHOAMI)
            assert review["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
        finally:
            await token.stop()
            await robot.close()
        assert ServiceAccountToken("default", "default").renew_in() == 0.0   # never asked: at once
    finally:
        await admin.close()
