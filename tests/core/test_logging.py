"""Logs never carry message bodies, tokens, secrets or full client addresses."""

import logging

from tests.mailbuilder import inbound_payload, post_inbound
from tests.portal.conftest import token_for


def test_a_busy_request_mix_logs_nothing_personal(client, caplog, agent_token, run_jobs, postmark):
    caplog.set_level(logging.DEBUG)
    _, headers = agent_token()
    postmark.fail_next(status=422, error_code=406, message="Inactive recipient")
    post_inbound(client, inbound_payload(text="SECRET-BODY-TEXT 4111 1111 1111 1111", subject="SECRET-SUBJECT"))
    run_jobs()
    client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers, json={"body_text": "SECRET-NOTE"})
    portal_jwt = token_for("alice@example.com")
    client.get("/api/v1/support/tickets", headers={"Authorization": f"Bearer {portal_jwt}"},
               environ_base={"REMOTE_ADDR": "198.51.100.23"})
    client.post("/tickets/inbound", json=inbound_payload(), auth=("postmark-test", "wrong-password"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # something was logged, so the checks below mean something
    for secret in ("SECRET-BODY-TEXT", "4111", "SECRET-SUBJECT", "SECRET-NOTE", portal_jwt,
                   headers["Authorization"].split()[1], "webhook-test-password", "wrong-password", "198.51.100.23",
                   "test-secret-key"):
        assert secret not in logged
