"""The team: agents listed with their last sign-in, invited, given a role, deactivated (console and CLI),
each with their own time zone; ops agents do everything but manage the team."""

import re

from sqlalchemy import select

from echo.agents.models import Agent, AgentSession, AgentToken
from echo.tickets.models import Ticket
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound


def test_the_team_page_lists_invites_and_changes_roles(signed_in, db):
    client, token, me = signed_in()
    AgentFactory(email="ben@echo.local", display_name="Ben", role="ops")
    page = client.get("/tickets/team").get_data(as_text=True)
    assert "Ben" in page and "ben@echo.local" in page and "never" in page
    invited = client.post("/tickets/team/invite", data={"csrf_token": token, "email": "Kim@Raxx.app",
                                                        "display_name": "Kim", "role": "ops"})
    html = invited.get_data(as_text=True)
    assert invited.status_code == 200 and "Invited kim@raxx.app" in html
    assert re.search(r"https://help\.raxx\.app/tickets/enrol\?token=[\w-]+", html)  # the configured console URL
    ben = db.session.scalar(select(Agent).where(Agent.email == "ben@echo.local"))
    changed = client.post(f"/tickets/team/{ben.id}/role", data={"csrf_token": token, "role": "superadmin"})
    assert changed.status_code == 200 and "Ben is now superadmin." in changed.get_data(as_text=True)
    bad = client.post(f"/tickets/team/{ben.id}/role", data={"csrf_token": token, "role": "owner"})
    assert bad.status_code == 422
    db.session.expire_all()
    assert db.session.get(Agent, ben.id).role == "superadmin"


def test_ops_agents_cannot_manage_the_team(signed_in, db):
    client, token, me = signed_in(role="ops")
    assert client.get("/tickets/team").status_code == 403
    assert client.post("/tickets/team/invite", data={"csrf_token": token, "email": "x@raxx.app"}).status_code == 403
    assert db.session.scalar(select(Agent).where(Agent.email == "x@raxx.app")) is None


def test_deactivating_ends_sessions_and_tokens_and_unassigns_open_tickets(signed_in, db, agent_client):
    client, token, me = signed_in()
    ben = AgentFactory(email="ben@echo.local", display_name="Ben", role="ops")
    ben_client, _ = agent_client(ben)
    db.session.add(AgentToken(agent_id=ben.id, token_hash="0" * 64, name="script"))
    db.session.commit()
    post_inbound(client, inbound_payload())
    db.session.execute(Ticket.__table__.update().values(assigned_to=ben.id))
    db.session.commit()
    assert ben_client.get("/tickets").status_code == 200
    done = client.post(f"/tickets/team/{ben.id}/deactivate", data={"csrf_token": token})
    assert done.status_code == 200 and "Ben is deactivated" in done.get_data(as_text=True)
    assert ben_client.get("/tickets").status_code == 302  # signed out at once
    db.session.expire_all()
    assert all(s.revoked_at for s in db.session.scalars(select(AgentSession).where(AgentSession.agent_id == ben.id)))
    assert all(t.revoked_at for t in db.session.scalars(select(AgentToken).where(AgentToken.agent_id == ben.id)))
    assert db.session.scalar(select(Ticket.assigned_to)) is None
    assert "deactivated" in client.get("/tickets/team").get_data(as_text=True)


def test_the_last_superadmin_cannot_be_demoted_or_deactivated(signed_in, db, app):
    client, token, me = signed_in()
    refused = client.post(f"/tickets/team/{me.id}/role", data={"csrf_token": token, "role": "ops"})
    assert refused.status_code == 409 and "at least one active superadmin" in refused.get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=["agents", "deactivate", me.email])
    assert result.exit_code != 0 and "at least one active superadmin" in result.output
    db.session.expire_all()
    assert db.session.get(Agent, me.id).active and db.session.get(Agent, me.id).role == "superadmin"


def test_agents_deactivate_on_the_command_line(app, db):
    kim = AgentFactory(email="kim@raxx.app", display_name="Kim", role="ops")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["agents", "deactivate", "KIM@raxx.app"])
    assert result.exit_code == 0 and "kim@raxx.app is deactivated" in result.output
    db.session.expire_all()
    assert not db.session.get(Agent, kim.id).active
    listed = runner.invoke(args=["agents", "list"])
    assert "kim@raxx.app\tops\tdeactivated\tnever" in listed.output
    unknown = runner.invoke(args=["agents", "deactivate", "nobody@raxx.app"])
    assert unknown.exit_code != 0 and "No agent nobody@raxx.app" in unknown.output


def test_times_are_shown_in_the_agents_own_zone(signed_in, db):
    client, token, me = signed_in()
    post_inbound(client, inbound_payload())
    ticket = db.session.scalar(select(Ticket))
    db.session.execute(Ticket.__table__.update().values(
        created_at=ticket.created_at.replace(year=2026, month=7, day=1, hour=12, minute=0)))
    db.session.commit()
    assert "opened 2026-07-01 12:00 UTC" in client.get("/tickets/TKT-0001").get_data(as_text=True)
    saved = client.post("/tickets/settings", data={"csrf_token": token, "display_name": "Demo Agent",
                                                   "time_zone": "America/New_York", "signature": ""})
    assert saved.status_code == 302
    assert "opened 2026-07-01 08:00 EDT" in client.get("/tickets/TKT-0001").get_data(as_text=True)
    bad = client.post("/tickets/settings", data={"csrf_token": token, "display_name": "Demo Agent",
                                                 "time_zone": "Mars/Olympus", "signature": ""})
    assert bad.status_code == 422 and "is not a time zone" in bad.get_data(as_text=True)
