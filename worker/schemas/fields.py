"""Fields that normalize Zenoti's quirks once, for every schema.

"", the nil GUID and the .NET default date 0001-01-01T00:00:00 mean "none" (None); GUIDs come in
either case; ids and numbers sometimes arrive as the other type. Error messages name what was
expected, never the value received (it may be personal data).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

NIL_GUID = uuid.UUID(int=0)
_DOTNET_DEFAULT_DATE = datetime(1, 1, 1)


class Guid(fields.Field):
    """A GUID in either case; "", null and the nil GUID load as None."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValidationError("Not a valid GUID.")
        try:
            guid = uuid.UUID(value)
        except ValueError:
            raise ValidationError("Not a valid GUID.") from None
        return None if guid == NIL_GUID else guid


class Text(fields.Field):
    """A string; "" and null load as None, numbers as their decimal text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValidationError("Not a valid string.")


class Money(fields.Decimal):
    """An amount as sent (a JSON number or numeric string), exact: loads as Decimal, never float.
    NaN and infinities are refused; null loads as None."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_default", None)
        super().__init__(allow_nan=False, allow_none=True, **kwargs)


class LocalDateTime(fields.Field):
    """A business time with no offset (centre-local): kept exactly as sent, never shifted."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        when = _parse_datetime(value)
        if when.tzinfo is not None:  # tolerate an offset, but keep the wall-clock time
            when = when.replace(tzinfo=None)
        return None if when == _DOTNET_DEFAULT_DATE else when


class UtcTimestamp(fields.Field):
    """An instant in UTC, with 6 or 7 fractional digits (.NET writes 7; 7 is cut to 6)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        when = _parse_datetime(value)
        if when.replace(tzinfo=None) == _DOTNET_DEFAULT_DATE:
            return None
        try:
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        except OverflowError:  # 0001-01-01 with a positive offset, 9999-12-31 with a negative
            raise ValidationError("Not a valid ISO 8601 datetime: out of range.") from None


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValidationError("Not a valid ISO 8601 datetime.")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("Not a valid ISO 8601 datetime.") from None
