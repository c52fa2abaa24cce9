"""The console's team pages: the agent's own settings, saved replies, and (for superadmins) the team."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from echo.agents import service as agents
from echo.agents.models import ROLES, Agent
from echo.console.auth import signed_in_agent
from echo.console.views import guard
from echo.errors import EchoError, Forbidden
from echo.extensions import db
from echo.outbound import service as outbound

bp = Blueprint("console_admin", __name__, url_prefix="/tickets")
bp.before_request(guard)


def _superadmin() -> None:
    if g.actor.role != "superadmin":
        raise Forbidden("Only a superadmin manages the team.")


# --- The agent's own settings --------------------------------------------------------------------

@bp.get("/settings")
def settings():
    return render_template("console/settings.html", agent=signed_in_agent(), zones=agents.time_zones(), error=None,
                           flash=request.args.get("saved") and "Saved.")


@bp.post("/settings")
def save_settings():
    agent = signed_in_agent()
    form = request.form
    try:
        agents.update_profile(agent, actor=g.actor, display_name=form.get("display_name"),
                              time_zone=form.get("time_zone"), signature=form.get("signature", ""),
                              notify_new=form.get("notify_new"), notify_email=form.get("notify_email") == "1")
    except EchoError as exc:
        db.session.rollback()
        return render_template("console/settings.html", agent=signed_in_agent(), zones=agents.time_zones(),
                               error=exc.message, flash=None), exc.status
    db.session.commit()
    return redirect(url_for("console_admin.settings", saved=1))


# --- Notifications ------------------------------------------------------------------------------

@bp.get("/notifications")
def notifications():
    from echo.notifications import service as notes

    me = signed_in_agent()
    response = render_template("console/notifications.html", items=notes.latest(me.id))
    db.session.commit()
    return response


@bp.get("/notifications/count")
def notification_count():
    from echo.notifications import service as notes

    count = notes.unread_count(signed_in_agent().id)
    db.session.commit()
    return {"unread": count}


@bp.post("/notifications/read")
def read_notifications():
    """Mark one (`id`) or all of the agent's notifications read; `next` opens the ticket it was about."""
    from echo.notifications import service as notes

    raw = request.form.get("id") or ""
    try:
        one = uuid.UUID(raw) if raw else None
    except ValueError:
        abort(404)
    notes.mark_read(signed_in_agent().id, one)
    db.session.commit()
    target = request.form.get("next") or ""
    return redirect(target if target.startswith("/tickets/") and "//" not in target
                    else url_for("console_admin.notifications"))


# --- Saved replies (team-wide) -------------------------------------------------------------------

@bp.get("/saved-replies")
def saved_replies():
    q = request.args.get("q", "")
    return render_template("console/saved_replies.html", replies=outbound.saved_replies(q), q=q, error=None,
                           placeholders=outbound.PLACEHOLDERS, editing=None, form={})


@bp.post("/saved-replies")
def save_saved_reply():
    form = request.form
    raw_id = form.get("id") or ""
    try:
        saved_id = uuid.UUID(raw_id) if raw_id else None
    except ValueError:
        abort(404)
    try:
        outbound.save_saved_reply(actor=g.actor, name=form.get("name", ""), body_text=form.get("body", ""),
                                  saved_id=saved_id)
    except EchoError as exc:
        db.session.rollback()
        return render_template("console/saved_replies.html", replies=outbound.saved_replies(), q="", error=exc.message,
                               placeholders=outbound.PLACEHOLDERS, editing=saved_id,
                               form={"name": form.get("name", ""), "body": form.get("body", "")}), exc.status
    db.session.commit()
    return redirect(url_for("console_admin.saved_replies"))


@bp.post("/saved-replies/<uuid:saved_id>/delete")
def delete_saved_reply(saved_id):
    try:
        outbound.delete_saved_reply(saved_id, actor=g.actor)
    except EchoError:
        db.session.rollback()
        abort(404)
    db.session.commit()
    return redirect(url_for("console_admin.saved_replies"))


# --- The team (superadmins) --------------------------------------------------------------------

def _team_page(error: str | None = None, flash: str | None = None, link: str | None = None, status: int = 200):
    return render_template("console/team.html", team=agents.team(), roles=ROLES, error=error, flash=flash,
                           link=link), status


@bp.get("/team")
def team():
    _superadmin()
    return _team_page()


@bp.post("/team/invite")
def invite():
    """Add (or reactivate) an agent and show the one-time link that enrols their passkey."""
    from echo.console.auth_views import invitation_link

    _superadmin()
    form = request.form
    email = form.get("email", "").strip()
    name = " ".join(form.get("display_name", "").split())[:200] or email.partition("@")[0]
    try:
        agent = agents.ensure_agent(email, name, form.get("role", "ops"))
        link = invitation_link(agent)
    except EchoError as exc:
        db.session.rollback()
        return _team_page(error=exc.message, status=exc.status)
    db.session.commit()
    return _team_page(flash=f"Invited {agent.email}. Send them this link (it works once, for 3 days):", link=link)


def _agent(agent_id: uuid.UUID) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        abort(404)
    return agent


@bp.post("/team/<uuid:agent_id>/role")
def change_role(agent_id):
    _superadmin()
    agent = _agent(agent_id)
    try:
        agents.set_role(agent, request.form.get("role", ""), actor=g.actor)
    except EchoError as exc:
        db.session.rollback()
        return _team_page(error=exc.message, status=exc.status)
    db.session.commit()
    return _team_page(flash=f"{agent.display_name} is now {agent.role}.")


@bp.post("/team/<uuid:agent_id>/deactivate")
def deactivate(agent_id):
    _superadmin()
    agent = _agent(agent_id)
    if agent.id == g.actor.id:
        return _team_page(error="You cannot deactivate yourself.", status=409)
    try:
        agents.deactivate(agent, actor=g.actor)
    except EchoError as exc:
        db.session.rollback()
        return _team_page(error=exc.message, status=exc.status)
    db.session.commit()
    return _team_page(flash=f"{agent.display_name} is deactivated: signed out everywhere, tokens revoked, "
                            "their open tickets unassigned.")
