"""Extension singletons, bound to an app in create_app()."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from flask import current_app, request
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

from echo.hosting import is_echo_request

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    if TYPE_CHECKING:
        # SQLAlchemy types it as any FromClause (a model may map a select); each of Echo's maps a Table.
        __table__: ClassVar[Table]


db = SQLAlchemy(model_class=Base)

# The models' base class. mypy cannot subclass an attribute such as db.Model (python/mypy#8603);
# Flask-SQLAlchemy builds db.Model from Base's body, so the type checker is shown Base itself.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model

# Keys are chosen per route (customer or IP); storage is Redis, set from REDIS_URL in create_app().
# Every Echo limit is set on its route: default or application-wide limits in the app's config (in
# a host app, the host's, for its own limiter) are never applied by Echo's.
limiter = Limiter(key_func=lambda: "global", headers_enabled=True, strategy="moving-window",
                  default_limits_exempt_when=lambda: True, application_limits_exempt_when=lambda: True)

# Echo's console checks its own forms with csrf.protect(); nothing is checked app-wide (in a host app
# that would reach the host's pages, and Echo's APIs and webhooks authenticate otherwise).
csrf = CSRFProtect()


@limiter.request_filter
def _not_limited() -> bool:
    """In a host app, the host's own routes are none of Echo's limiter's business; and a route marked
    `unlimited` is passed before the limiter resolves any limit (a fifth of a millisecond on the
    intake's hot path, where `limiter.exempt` alone still resolves them per request)."""
    return not is_echo_request() or getattr(current_app.view_functions.get(request.endpoint or ""),
                                            "echo_unlimited", False)


def unlimited(view: Callable[..., Any]) -> Callable[..., Any]:
    """Exempt a view from every rate limit (a webhook whose only, authenticated, caller would retry)."""
    exempted = limiter.exempt(view)
    exempted.echo_unlimited = True  # type: ignore[attr-defined]
    return exempted
