"""Who is looking at a ticket right now ("Ana is viewing", "Ana is replying"): kept in Redis only, for a
minute after each heartbeat, and told to every web process's streams at once (`hub.PRESENCE_CHANNEL`)."""

from __future__ import annotations

import json
import time
import uuid

from redis import RedisError

from echo.jobs import note_redis_failure, redis_connection, redis_unavailable
from echo.live.hub import PRESENCE_CHANNEL

STATES = ("viewing", "replying", "left")
FRESH = 45  # seconds a heartbeat counts for (the page sends one every 20 s)


def _key(ticket_id: uuid.UUID) -> str:
    return f"echo:presence:{ticket_id}"


def beat(ticket_id: uuid.UUID, number: str, agent_id: uuid.UUID, name: str, state: str) -> None:
    """This agent is on this ticket (or has left it); best effort: without Redis nobody hears of it."""
    if state not in STATES or redis_unavailable():
        return
    now = time.time()
    seen = {"ticket": number, "agent_id": str(agent_id), "name": name, "state": state, "at": now}
    try:
        with redis_connection().pipeline(transaction=False) as pipe:
            if state == "left":
                pipe.hdel(_key(ticket_id), str(agent_id))
            else:
                pipe.hset(_key(ticket_id), str(agent_id), json.dumps(seen))
                pipe.expire(_key(ticket_id), FRESH * 2)
            pipe.publish(PRESENCE_CHANNEL, json.dumps({"kind": "presence", **seen}))
            pipe.execute()
    except RedisError as exc:
        note_redis_failure(exc)


def here(ticket_id: uuid.UUID, *, besides: uuid.UUID | None = None) -> list[dict]:
    """The other agents on this ticket now, replying first."""
    if redis_unavailable():
        return []
    try:
        entries = redis_connection().hgetall(_key(ticket_id))
    except RedisError as exc:
        note_redis_failure(exc)
        return []
    now, found = time.time(), []
    for raw in entries.values():
        try:
            seen = json.loads(raw)
        except ValueError:
            continue
        if now - float(seen.get("at", 0)) <= FRESH and seen.get("agent_id") != str(besides):
            found.append(seen)
    return sorted(found, key=lambda s: (s["state"] != "replying", s["name"]))
