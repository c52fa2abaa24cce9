"""factory_boy factories for Echo's models, flushed into the test's session."""

import uuid

import factory
from factory.alchemy import SQLAlchemyModelFactory

from echo.agents.models import Agent
from echo.customers.models import Customer
from echo.extensions import db
from echo.tickets.models import Thread, Ticket


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class AgentFactory(_Base):
    class Meta:
        model = Agent

    id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"agent{n}@raxx.app")
    display_name = factory.Sequence(lambda n: f"Agent {n}")
    role = "ops"
    active = True


class CustomerFactory(_Base):
    class Meta:
        model = Customer

    id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    display_name = factory.Faker("name")


class TicketFactory(_Base):
    class Meta:
        model = Ticket

    id = factory.LazyFunction(uuid.uuid4)
    customer = factory.SubFactory(CustomerFactory)
    subject = factory.Sequence(lambda n: f"Question number {n}")
    status = "open"
    source = "email"


class ThreadFactory(_Base):
    class Meta:
        model = Thread

    id = factory.LazyFunction(uuid.uuid4)
    ticket = factory.SubFactory(TicketFactory)
    direction = "inbound"
    source = "email"
    body_text = factory.Faker("paragraph")
    stripped_text = factory.SelfAttribute("body_text")
    sender_email = factory.SelfAttribute("ticket.customer.email")
