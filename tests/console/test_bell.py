"""The console's bell: the agent's unread notifications, counted, listed, opened and marked read."""

from sqlalchemy import select

from echo.notifications.models import Notification
from echo.notifications.tasks import notify
from tests.mailbuilder import inbound_payload, post_inbound


def test_the_bell_counts_lists_and_marks_read(signed_in, db, call_task):
    client, token, me = signed_in()
    call_task(notify)
    post_inbound(client, inbound_payload(subject="Bell"))
    call_task(notify)
    assert client.get("/tickets/notifications/count").get_json() == {"unread": 1}
    page = client.get("/tickets/notifications").get_data(as_text=True)
    assert "New ticket: TKT-0001 Bell" in page
    item = db.session.scalar(select(Notification))
    opened = client.post("/tickets/notifications/read", data={"csrf_token": token, "id": str(item.id),
                                                             "next": "/tickets/TKT-0001"})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/tickets/TKT-0001")
    assert client.get("/tickets/notifications/count").get_json() == {"unread": 0}
