"""Portal jobs."""

from echo.extensions import db
from echo.jobs import task
from echo.portal import accounts


@task
def send_enrolment_link(email: str) -> bool:
    """Send a sign-up link if the address is a customer's (see accounts.send_enrolment_link)."""
    sent = accounts.send_enrolment_link(email)
    db.session.commit()
    return sent
