"""Validate request bodies with pydantic and answer every problem the same way, on every surface."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from echo.errors import InvalidPayload

M = TypeVar("M", bound=BaseModel)
MAX_DETAILS = 20


def validate(model: type[M] | TypeAdapter, data: object, message: str = "The request body is not valid.") -> Any:
    """`data` (a decoded JSON body) as `model`, or one InvalidPayload (422, `invalid_request`)
    listing each problem by field, without echoing the input back."""
    if not isinstance(data, dict):
        raise InvalidPayload("The body must be a JSON object.")
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in err["loc"]) or "body", "problem": err["msg"]}
                   for err in exc.errors(include_url=False, include_input=False)][:MAX_DETAILS]
        raise InvalidPayload(message, details=details) from None
