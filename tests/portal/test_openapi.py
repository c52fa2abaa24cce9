"""Schemathesis drives the portal API from its own OpenAPI document: no 500s, no schema violations."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.mailbuilder import attachment, inbound_payload, post_inbound
from tests.portal.conftest import bearer


@pytest.fixture
def portal_schema(app, client, redis_url):
    """The served document, bound to the app; a customer with a ticket exists so reads can succeed."""
    post_inbound(client, inbound_payload(attachments=[attachment("a.txt", b"hello", "text/plain")]))
    return schemathesis.openapi.from_wsgi("/api/v1/support/openapi.json", app)


def test_document_is_served_and_names_every_route(client):
    document = client.get("/api/v1/support/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/v1/support/health", "/api/v1/support/session", "/api/v1/support/events", "/api/v1/support/tickets",
        "/api/v1/support/tickets/{ticket_id}", "/api/v1/support/tickets/{ticket_id}/replies",
        "/api/v1/support/tickets/{ticket_id}/resolve",
        "/api/v1/support/tickets/{ticket_id}/attachments/{attachment_id}",
    }


def test_portal_api_conforms(portal_schema, redis_url):
    """Every operation, many generated requests each: responses match the document and none is a 500."""
    from hypothesis import given
    from redis import Redis

    operations = [result.ok() for result in portal_schema.get_all_operations()]
    assert len(operations) == 9
    # The event stream never ends, so it is not a case for generated requests (tests/live covers it).
    operations = [operation for operation in operations if not operation.path.endswith("/events")]
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case):
            Redis.from_url(redis_url).flushdb()  # rate limits are tested elsewhere; here every case gets through
            case.call_and_validate(headers=bearer("alice@example.com"))

        check()
