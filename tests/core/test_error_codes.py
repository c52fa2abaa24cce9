"""One error vocabulary: the same failure answers the same code on every JSON surface, and every
401 says how to authenticate."""

import pytest

from tests.conftest import WEBHOOK_AUTH

# (method, path, headers that authenticate on that surface)
SURFACES = {
    "webhook": ("POST", "/tickets/inbound", "basic"),
    "agent_api": ("POST", "/api/v1/agent/tickets/TKT-0001/notes", "agent"),
    "portal": ("POST", "/api/v1/support/tickets", "customer"),
    "investigate": ("POST", "/tickets/from-snapshot", "agent"),
}


@pytest.fixture
def auth(agent_token):
    from tests.portal.conftest import bearer

    _, agent_headers = agent_token()
    basic = {"Authorization": "Basic " + __import__("base64").b64encode(":".join(WEBHOOK_AUTH).encode()).decode()}
    return {"basic": basic, "agent": agent_headers, "customer": bearer("alice@example.com")}


@pytest.mark.parametrize("surface", SURFACES)
def test_no_credentials_is_unauthorized_with_a_challenge(client, surface):
    method, path, _ = SURFACES[surface]
    response = client.open(path, method=method, json={})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert response.headers.get("WWW-Authenticate", "").split()[0] in ("Basic", "Bearer")


@pytest.mark.parametrize("surface", SURFACES)
def test_a_body_that_is_not_an_object_is_invalid_request(client, db, auth, surface):
    method, path, kind = SURFACES[surface]
    if surface == "agent_api":
        from tests.mailbuilder import inbound_payload, post_inbound

        post_inbound(client, inbound_payload())
    response = client.open(path, method=method, json=[1, 2], headers=auth[kind])
    assert (response.status_code, response.get_json()["error"]) == (422, "invalid_request")


@pytest.mark.parametrize("surface", SURFACES)
def test_broken_json_and_wrong_media_type(client, auth, surface):
    method, path, kind = SURFACES[surface]
    broken = client.open(path, method=method, data="{nope", content_type="application/json", headers=auth[kind])
    assert (broken.status_code, broken.get_json()["error"]) == (400, "invalid_json")
    text = client.open(path, method=method, data="hello", content_type="text/plain", headers=auth[kind])
    assert (text.status_code, text.get_json()["error"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize("surface", SURFACES)
def test_an_oversized_body_is_payload_too_large(make_app, auth, surface):
    method, path, kind = SURFACES[surface]
    app = make_app(ECHO_MAX_INBOUND_BYTES="1024")
    response = app.test_client().open(path, method=method, data="x" * 4096, content_type="application/json",
                                      headers=auth[kind])
    assert (response.status_code, response.get_json()["error"]) == (413, "payload_too_large")


def test_a_wrong_method_is_405_with_allow(client):
    response = client.delete("/tickets/inbound")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
