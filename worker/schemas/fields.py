"""Fields that normalize Zenoti's quirks once, for every schema.

"", the nil GUID and the .NET default date 0001-01-01T00:00:00 mean "none" (None); GUIDs come in
either case; ids and numbers sometimes arrive as the other type. Every field is optional (absent
or null loads as None) unless it is a key (RequiredGuid, RequiredText). Error messages name what
was expected, never the value received (it may be personal data).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from marshmallow import ValidationError, fields

NIL_GUID = uuid.UUID(int=0)
_DOTNET_DEFAULT_DATE = datetime(1, 1, 1)


class _Optional:
    """Absent loads as None (null too), unless the field is required."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not kwargs.get("required"):
            kwargs.setdefault("load_default", None)
        super().__init__(*args, **kwargs)


class _Required:
    """A key: required, not null, and a value that loads as None ("", the nil GUID) is refused
    with the field's `none_error` message, under the field's name."""

    none_error = "required"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        if loaded is None:
            raise self.make_error(self.none_error)
        return loaded


class Guid(_Optional, fields.Field):
    """A GUID in either case; "", null and the nil GUID load as None."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "Not a valid GUID."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            guid = uuid.UUID(value)
        except ValueError:
            raise self.make_error("invalid") from None
        return None if guid == NIL_GUID else guid


class RequiredGuid(_Required, Guid):
    """A GUID key: missing, null, "" or the nil GUID is no id."""

    none_error = "invalid"


class Text(_Optional, fields.Field):
    """A string; "" and null load as None, numbers as their decimal text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValidationError("Not a valid string.")


class RequiredText(_Required, Text):
    """A text key: missing, null or "" is no id."""


class Integer(_Optional, fields.Integer):
    """An integer (a numeric string is taken too)."""


class Boolean(_Optional, fields.Boolean):
    """A flag: JSON booleans, and the strings and numbers marshmallow reads as one (1, "true")."""


class Decimal(_Optional, fields.Decimal):
    """A number as sent (a JSON number or numeric string), exact: loads as Decimal, never float.
    NaN and infinities are refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)


class Money(Decimal):
    """An amount, exact (see Decimal)."""


class LocalDateTime(_Optional, fields.Field):
    """A business time with no offset (centre-local): kept exactly as sent, never shifted."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        when = _parse_datetime(value)
        if when.tzinfo is not None:  # tolerate an offset, but keep the wall-clock time
            when = when.replace(tzinfo=None)
        return None if when == _DOTNET_DEFAULT_DATE else when


class UtcTimestamp(_Optional, fields.Field):
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


class Nested(_Optional, fields.Nested):
    """A nested object, loaded as its schema says (a dict for a part, found by path)."""


class Flattened(Nested):
    """A nested object whose fields its parent schema lifts to its own level (see
    parts.Schema): `personal_info.first_name` loads as the parent's `first_name`."""


class Many(fields.List):
    """A list of nested objects, loaded as a tuple; absent loads as () unless required."""

    def __init__(self, schema: Any, **kwargs: Any) -> None:
        if not kwargs.get("required"):
            kwargs.setdefault("load_default", tuple)
        super().__init__(fields.Nested(schema), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return tuple(super()._deserialize(value, attr, data, **kwargs))


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValidationError("Not a valid ISO 8601 datetime.")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("Not a valid ISO 8601 datetime.") from None
