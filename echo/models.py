"""Import every feature's models so the metadata (and Alembic) sees all tables."""

from echo.agents.models import Agent, AgentInvitation, AgentSession, AgentToken  # noqa: F401
from echo.attachments.models import Attachment  # noqa: F401
from echo.audit.models import AuditLog, SupportAuditLog  # noqa: F401
from echo.customers.models import Customer  # noqa: F401
from echo.mail.models import OutboxMessage  # noqa: F401
from echo.notifications.models import Notification, NotifyCursor  # noqa: F401
from echo.passkeys.models import Passkey  # noqa: F401
from echo.portal.models import CustomerEnrolment, CustomerSession  # noqa: F401
from echo.tickets.models import BlockedSender, Draft, MessageId, SavedReply, Thread, Ticket, TicketRead  # noqa: F401
