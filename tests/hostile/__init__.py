"""Hostile input: the saved corpus, cases built from the samples, and what a reason may not say.

Shared by the corpus, property and log tests of this package. A case is a body, the URL it is
posted to, what the ingress must answer, how the worker must settle it and what its reason must
say; a case with a `bug` is a known defect, run as a strict xfail that names what it raises
today (no case has one at present).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import random
import re
import string
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import marshmallow
import psycopg
import psycopg_pool

from tests.fixtures import clones, samples
from tests.fixtures.services import DATABASE_PREFIX
from worker.pipeline import batch, envelope, handlers
from worker.schemas import fields as zfields
from zenoti_ingest import db, errors
from zenoti_ingest.settings import Settings

CORPUS = Path(__file__).parent / "corpus"
WEBHOOK_PATH = "/webhooks/zenoti"

# What a known bug can let out, by the name index.toml's `raises` gives it. batch.prepare
# raises nothing (what nobody foresaw is a dead letter of class `unexpected`), so a wrong
# outcome fails an assertion; batch.write can still raise: TransientError when Postgres
# refuses a batch for a reason it classes as transient, DataRejected when it refuses even a
# delivery's dead letter.
EXCEPTIONS: dict[str, type[BaseException]] = {
    "AssertionError": AssertionError,
    "TransientError": errors.TransientError,
    "DataRejected": errors.DataRejected,
}

SETTLED = frozenset({"processed", "duplicate", "dead"})
TIMESTAMP = "2024-05-01T10:00:00.0000001Z"


@dataclass(frozen=True)
class Case:
    """A hostile body: where it is posted, what the ingress answers, how the worker ends it.

    `worker` is "processed", "dead:<failure_class>", or "settled" (processed, or dead with a
    failure class and a reason: either is a clear result); `reason`, if given, is words the
    dead letter's reason must contain."""

    name: str
    body: bytes
    what: str
    path: str = ""  # after /webhooks/zenoti: "", "/Appointment.Started", "/@east/..."
    ingress: int = 202
    worker: str = "processed"
    reason: str | None = None
    bug: str | None = None
    raises: type[BaseException] | None = None

    @property
    def url(self) -> str:
        return WEBHOOK_PATH + self.path

    @property
    def hint(self) -> str:
        """The path hint the ingress stores (the default source's URLs only)."""
        return self.path.lstrip("/")


def saved_cases() -> list[Case]:
    """The saved bodies under corpus/, described by corpus/index.toml."""
    index = tomllib.loads((CORPUS / "index.toml").read_text())
    return [
        Case(
            name=entry["file"],
            body=(CORPUS / entry["file"]).read_bytes(),
            what=entry["what"],
            path=entry.get("path", ""),
            ingress=entry.get("ingress", 202),
            worker=entry.get("worker", "processed"),
            reason=entry.get("reason"),
            bug=entry.get("bug"),
            raises=EXCEPTIONS[entry["raises"]] if "raises" in entry else None,
        )
        for entry in index["case"]
    ]


def page_body(name: str) -> bytes | None:
    """A sample page's body exactly as printed: from its first line opening with `{` to its
    last closing `}` (or the page's end, for the pages cut off mid-body); None for no body."""
    lines = samples.page(name).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]
    if not starts:
        return None
    ends = [i for i, line in enumerate(lines) if line.startswith("}") and i > starts[0]]
    end = ends[-1] + 1 if ends else len(lines)
    return "\n".join(lines[starts[0] : end]).strip().encode()


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def page_cases() -> list[Case]:
    """Every sample page's body as printed (the broken ones among them) on its event's URL."""
    cases = []
    for name, event_type in samples.EVENT_TYPES.items():
        body = page_body(name)
        if body is None:
            continue
        valid = is_json(body)
        cases.append(
            Case(
                name=f"page:{name}",
                body=body,
                what=f"the {event_type} sample page as printed" + ("" if valid else " (not JSON)"),
                path=f"/{event_type}",
                worker="settled" if valid else "dead:parse",
            )
        )
    return cases


def _fresh_ids(document: Any) -> Any:
    """A copy with every GUID replaced by a new one (each appointment its own row)."""
    if isinstance(document, dict):
        return {k: _fresh_ids(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_fresh_ids(v) for v in document]
    if isinstance(document, str) and is_guid(document):
        return str(uuid.uuid4())
    return document


def is_guid(text: str) -> bool:
    """A GUID as Zenoti writes it (36 characters), other than the nil GUID."""
    try:
        return uuid.UUID(text) != zfields.NIL_GUID and len(text) == 36
    except ValueError:
        return False


def group_with(appointments: int, delivery_id: str) -> bytes:
    """AppointmentGroup.Created (the sample) with this many appointments, each its own."""
    document = samples.repaired_json("appointment-group-created")
    one = document["data"]["appointments"][0]
    document["data"]["appointments"] = [_fresh_ids(one) for _ in range(appointments)]
    document["id"] = delivery_id
    return json.dumps(document).encode()


def repaired_page(name: str) -> Any | None:
    """A sample page's body with the page's own typos mended (a missing quote, a missing
    comma, a capture cut inside `transactions`); None when it is still not JSON."""
    body = page_body(name)
    if body is None:
        return None
    text = body.decode().replace('"equipment_id: ""', '"equipment_id": ""')
    text = text.replace('"+91 9885117036"\n', '"+91 9885117036",\n')
    if '"transactions": [' in text:
        text = text[: text.index('"transactions": [')] + '"transactions": []\n    }\n  }\n}'
    try:
        return json.loads(text)
    except ValueError:
        return None


def invoice_with(appointments: int) -> bytes:
    """The Invoice.Closed sample (the largest page with appointments), repaired, with this many
    appointments and as many invoice items, as a bare body."""
    data = repaired_page("invoice-closed-event")["data"]
    invoice = data["invoice"]
    item, appointment = invoice["invoice_items"][0], invoice["appointments"][0]
    invoice["invoice_items"] = [_fresh_ids(item) for _ in range(appointments)]
    invoice["appointments"] = [_fresh_ids(appointment) for _ in range(appointments)]
    return json.dumps(data).encode()


def junk(length: int, seed: int) -> str:
    """Letters and digits Postgres can't compress much (an index entry stays that long)."""
    rnd = random.Random(seed)
    return "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(length))


def generated_cases() -> list[Case]:
    """Cases too big to keep as files, or built from the samples."""
    guest = samples.repaired_json("guest-created")
    guest["id"], guest["data"]["id"] = "gen-big-name", str(uuid.uuid4())
    guest["data"]["personal_info"]["first_name"] = junk(900_000, 1)
    keys = {
        "id": "gen-many-keys",
        "event_type": "Foo.Bar",
        "event_timestamp": TIMESTAMP,
        "data": {f"k{i}": i for i in range(60_000)},
    }
    return [
        Case(
            "group-100-appointments",
            group_with(100, "gen-group-100"),
            "AppointmentGroup.Created with 100 appointments",
        ),
        Case(
            "invoice-100-appointments",
            invoice_with(100),
            "Invoice.Closed (the largest sample with appointments) with 100 appointments and "
            "100 items",
            path="/Invoice.Closed",
        ),
        Case(
            "group-10000-appointments",
            group_with(10_000, "gen-group-10000"),
            "AppointmentGroup.Created with 10,000 appointments: over the 1 MiB limit (413); "
            "the worker still settles it should it come by another way",
            ingress=413,
        ),
        Case(
            "big-900k-name",
            json.dumps(guest).encode(),
            "a guest with a 900,000-character first name (under the 1 MiB limit)",
        ),
        Case(
            "big-60k-keys",
            json.dumps(keys).encode(),
            "an unknown event type whose data has 60,000 keys",
        ),
        Case(
            "long-path-hint",
            b'{"anything": 1}',
            "a bare body on a URL naming a 10,001-character event type: not an event type "
            "name (404); a stream entry made by hand with that hint is dead, its hint not kept",
            path="/A" + junk(10_000, 2),
            ingress=404,
            worker="dead:unknown_event_type",
            reason="not a Zenoti event type name",
        ),
    ]


def all_cases() -> list[Case]:
    return saved_cases() + page_cases() + generated_cases()


# --- What a reason may say -----------------------------------------------------------------------


def _vocabulary() -> str:
    """Every text reasons are built from: our messages and field names, marshmallow's and the
    json module's messages, psycopg's error class names. A body value found in here can't be
    told from the wording of a reason, so it is not counted as leaked."""
    parts = [inspect.getsource(module) for module in (envelope, handlers, batch, db, errors)]
    parts += [inspect.getsource(module) for module in handlers.RESOURCES]
    parts.append(inspect.getsource(zfields))
    parts.append(inspect.getsource(json.decoder))
    for name in dir(marshmallow.fields):
        field = getattr(marshmallow.fields, name)
        parts += [str(m) for m in getattr(field, "default_error_messages", {}).values()]
    parts += [str(m) for m in marshmallow.Schema._default_error_messages.values()]
    parts += dir(psycopg.errors)
    return "\n".join(parts)


VOCABULARY = _vocabulary()


def string_values(document: Any) -> Iterator[str]:
    """Every string value in a JSON document (keys excluded: reasons name fields)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


_QUOTED = re.compile(r'"((?:[^"\\]|\\.){4,})"')


def body_strings(body: bytes) -> set[str]:
    """The body's string values longer than 3 characters, read leniently when it is not JSON."""
    try:
        values = set(string_values(json.loads(body)))
    except (ValueError, RecursionError):
        values = set(_QUOTED.findall(body.decode("utf-8", "replace")))
    return {v for v in values if len(v) > 3}


_NOT_WORDS = string.digits + string.whitespace + string.punctuation


def leaks(text: str | None, body: bytes) -> list[str]:
    """The body's string values that `text` quotes: those longer than 3 characters, with a
    letter in them (a reason may say "line 3 column 12"), and not words reasons are made of."""
    if not text:
        return []
    return sorted(
        v for v in body_strings(body) if v in text and v.strip(_NOT_WORDS) and v not in VOCABULARY
    )


# --- Personal data -------------------------------------------------------------------------------

NAME_KEYS = frozenset(
    {
        "first_name",
        "last_name",
        "middle_name",
        "nick_name",
        "display_name",
        "notification_name",
        "therapist_name",
        "user_name",
        "froze_by",
        "cancelled_by",
    }
)
EMAIL_KEYS = frozenset({"email", "guest_email", "username"})
PHONE_KEYS = frozenset({"mobile_phone", "home_phone", "work_phone", "phone"})
# Objects whose "name" is a person's: a therapist, a member, the seller, the guest.
PERSON_OBJECTS = frozenset({"therapist", "members", "sold_by", "guest", "employee", "user"})

_PAIR = re.compile(r'"(?P<key>[A-Za-z_]+)"\s*:\s*"(?P<value>[^"]+)"')
_PHONE_OBJECT = re.compile(r'"(?:mobile|home|work)_phone"\s*:\s*\{[^{}]*?"number"\s*:\s*"?(\d{5,})')
_NAME_IN_PERSON = re.compile(
    r'"(?:' + "|".join(PERSON_OBJECTS) + r')"\s*:\s*\[?\s*\{[^{}]*?"name"\s*:\s*"([^"]+)"'
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def personal_values_in_pages() -> set[str]:
    """Guest and staff names, emails and phone numbers printed on the sample pages (read with
    patterns, since some pages are not JSON), 4 characters or longer."""
    found: set[str] = set()
    for name in samples.EVENT_TYPES:
        text = (page_body(name) or b"").decode()
        for match in _PAIR.finditer(text):
            key, value = match["key"], match["value"]
            if key in NAME_KEYS | EMAIL_KEYS | PHONE_KEYS:
                found.add(value)
        found.update(_PHONE_OBJECT.findall(text))
        found.update(_NAME_IN_PERSON.findall(text))
        found.update(_EMAIL.findall(text))
    return {v.strip() for v in found if len(v.strip()) > 3}


class Canaries:
    """Unique stand-ins put where a sample has a person's name, email or phone number."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def _next(self, kind: str) -> str:
        n = len(self.values)
        value = {
            "name": f"Zqname{n:04d}Canary",
            "email": f"zq{n:04d}.canary@example.invalid",
            "phone": f"+1 555 01{n:04d}",
        }[kind]
        self.values.add(value)
        return value

    def inject(self, document: Any, parent: str = "") -> Any:
        """A copy of the document with every personal value replaced by a new canary."""
        if isinstance(document, list):
            return [self.inject(v, parent) for v in document]
        if not isinstance(document, dict):
            return document
        out = {}
        for key, value in document.items():
            if isinstance(value, dict | list):
                out[key] = self.inject(value, key)
            elif key in NAME_KEYS or (key == "name" and parent in PERSON_OBJECTS):
                out[key] = self._next("name")
            elif key in EMAIL_KEYS:
                out[key] = self._next("email")
            elif key in PHONE_KEYS or (key == "number" and parent in PHONE_KEYS):
                out[key] = self._next("phone")
            else:
                out[key] = value
        return out


def canary_cases(canaries: Canaries) -> list[Case]:
    """Every sample page that is JSON once repaired, its personal data replaced by canaries;
    and variants that are dead letters: a NUL next to a canary, a wrong type beside one."""
    cases = []
    for name, event_type in samples.EVENT_TYPES.items():
        document = repaired_page(name)
        if document is None:
            continue
        if "id" in document and "data" in document:
            document["id"] = f"canary-{name}"
        clean = canaries.inject(copy.deepcopy(document))
        cases.append(
            Case(
                f"canary:{name}",
                json.dumps(clean).encode(),
                f"{name} with canaries",
                f"/{event_type}",
                worker="settled",
            )
        )
        nul = canaries.inject(copy.deepcopy(document))
        _poison(nul, lambda v: v + "\u0000" if v in canaries.values else v)
        if "id" in nul and "data" in nul:
            nul["id"] = f"canary-nul-{name}"
        cases.append(
            Case(
                f"canary-nul:{name}",
                json.dumps(nul).encode(),
                f"{name} with canaries ending in U+0000",
                f"/{event_type}",
                worker="settled",
            )
        )
        typed = canaries.inject(copy.deepcopy(document))
        _poison(typed, lambda v: {"wrong": v} if isinstance(v, str) and is_guid(v) else v)
        if "id" in typed and "data" in typed:
            typed["id"] = f"canary-type-{name}"
        cases.append(
            Case(
                f"canary-type:{name}",
                json.dumps(typed).encode(),
                f"{name} with canaries, its GUIDs made objects",
                f"/{event_type}",
                worker="settled",
            )
        )
    return cases


def _poison(document: Any, change) -> None:
    """Apply `change` to every scalar value, in place."""
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(value, dict | list):
                _poison(value, change)
            else:
                document[key] = change(value)
    elif isinstance(document, list):
        for i, value in enumerate(document):
            if isinstance(value, dict | list):
                _poison(value, change)
            else:
                document[i] = change(value)


@contextlib.contextmanager
def cloned_database(
    postgres_url: str, pg_admin: psycopg.Connection, template_db: str
) -> Iterator[tuple[str, psycopg_pool.ConnectionPool]]:
    """A migrated database (a clone of the session's template) and a worker's pool on it, for
    a module whose tests each write rows of their own."""
    with (
        clones.cloned(postgres_url, pg_admin, template_db, DATABASE_PREFIX) as url,
        db.create_pool(Settings(database_url=url)) as pool,
    ):
        yield url, pool
