"""Each kind of call: its request, the shape its answer must have, the records it yields
(each to enter the pipeline as one delivery) and the calls it adds (next page, details)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backfill import client as api
from backfill import plan
from zenoti_ingest import snapshots

APPOINTMENTS_ENDPOINT = "/v1/appointments"
SALES_ENDPOINT = "/v1/reports/sales/accrual_basis/flat_file"
INVOICE_ENDPOINT = "/v1/invoices/{invoice_id}"
CENTERS_ENDPOINT = "/v1/centers"
EMPLOYEES_ENDPOINT = "/v1/centers/{center_id}/employees"
GUESTS_ENDPOINT = "/v1/guests"
MEMBERS_ENDPOINT = "/v1/centers/{center_id}/members"
SESSIONS_ENDPOINT = "/v1/classes/sessions"
PACKAGES_ENDPOINT = "/v1/guests/{guest_id}/packages"


@dataclass(frozen=True, slots=True)
class Record:
    """A record to enqueue: its path hint (zenoti_ingest/snapshots.py) and exact bytes."""

    path_hint: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Result:
    read_at_us: int  # when Zenoti answered: the records' version
    records: list[Record] = field(default_factory=list)
    more: list[plan.Call] = field(default_factory=list)


def execute(client: api.Client, call: plan.Call) -> Result:
    """Make the call; ApiShapeError when its answer does not fit."""
    if call.key.startswith("appointments/"):
        return _appointments(client, call)
    if call.key.startswith("sales/"):
        return _sales(client, call)
    if call.key.startswith("employees/"):
        return _employees(client, call)
    if call.key.startswith("guests/"):
        return _guests(client, call)
    if call.key.startswith("memberships/"):
        return _memberships(client, call)
    if call.key.startswith("classes/"):
        return _sessions(client, call)
    if call.key.startswith("packages/"):
        return _packages(client, call)
    return _invoice(client, call)


def _appointments(client: api.Client, call: plan.Call) -> Result:
    params = {**call.params, "include_no_show_cancel": "true"}
    answer = client.get(APPOINTMENTS_ENDPOINT, APPOINTMENTS_ENDPOINT, params)
    if not isinstance(answer.document, list):
        raise api.shape_error(answer.endpoint, "(answer)", answer.document, "an array")
    hint = snapshots.path_hint("Appointment", call.params["center_id"])
    records = []
    for value, raw in api.split_array(answer.body, answer.endpoint):
        _text(answer, value if isinstance(value, dict) else None, "[].appointment_id")
        records.append(Record(hint, raw))
    return Result(answer.read_at_us, records)


def _sales(client: api.Client, call: plan.Call) -> Result:
    p = call.params
    body = {
        "center_ids": [p["center_id"]],
        "start_date": f"{p['start_date']} 00:00:00",
        "end_date": f"{p['end_date']} 23:59:59",
    }
    params = {"page": p["page"], "size": plan.PAGE_SIZE}
    answer = client.post(SALES_ENDPOINT, SALES_ENDPOINT, params, body)
    rows = _member(answer, answer.document, "sales", list, "an array")
    info = _member(answer, answer.document, "page_info", dict, "an object")
    total = _member(answer, info, "total", int, "a number", "page_info.total")
    more = []
    if plan.feeds(call, plan.INVOICES):
        invoices = dict.fromkeys(_guid(answer, row, "sales[].invoice_id") for row in rows)
        more += [plan.invoice_call(invoice_id) for invoice_id in invoices]
    if plan.feeds(call, plan.PACKAGES):
        bought = [row for row in rows if isinstance(row, dict) and _is_package(row)]
        guests = dict.fromkeys(_guid(answer, row, "sales[].guest_id") for row in bought)
        more += [plan.packages_call(p["center_id"], guest, 1) for guest in guests]
    following = plan.next_sales_page(call, total)
    return Result(answer.read_at_us, [], more + ([following] if following else []))


def _is_package(row: dict[str, Any]) -> bool:
    """A report row selling a package (`item_type` "Package"; the report writes names)."""
    item_type = row.get("item_type")
    return isinstance(item_type, str) and item_type.strip().lower() == "package"


def _invoice(client: api.Client, call: plan.Call) -> Result:
    invoice_id = call.params["invoice_id"]
    params = {"expand": ["InvoiceItems", "Appointments"]}
    answer = client.get(f"/v1/invoices/{invoice_id}", INVOICE_ENDPOINT, params)
    invoice = _member(answer, answer.document, "invoice", dict, "an object")
    _text(answer, invoice, "invoice.id")
    return Result(answer.read_at_us, [Record(snapshots.path_hint("Invoice"), answer.body)])


def _employees(client: api.Client, call: plan.Call) -> Result:
    center, page = call.params["center_id"], call.params["page"]
    params = {"page": page, "size": plan.PAGE_SIZE}
    answer = client.get(f"/v1/centers/{center}/employees", EMPLOYEES_ENDPOINT, params)
    records = _records(answer, "employees", "id", snapshots.path_hint("Employee", center))
    full = len(records) == plan.PAGE_SIZE
    return Result(
        answer.read_at_us, records, [plan.employees_call(center, page + 1)] if full else []
    )


def _guests(client: api.Client, call: plan.Call) -> Result:
    p = call.params
    answer = client.get(GUESTS_ENDPOINT, GUESTS_ENDPOINT, {**p, "size": plan.PAGE_SIZE})
    records = _records(answer, "guests", "id", snapshots.path_hint("Guest", p["center_id"]))
    # `page_Info` (capital I) as the guests list spells it; `page_info` as others do.
    info = answer.document.get("page_Info") or answer.document.get("page_info")
    total = info.get("total") if isinstance(info, dict) else None
    more = p["page"] * plan.PAGE_SIZE < total if isinstance(total, int) else len(records) > 0
    following = plan.guests_call(p["center_id"], p["last_updated"], p["page"] + 1)
    return Result(answer.read_at_us, records, [following] if more and records else [])


def _memberships(client: api.Client, call: plan.Call) -> Result:
    """A page of the center's members, unfiltered (see plan.py). The list key `members` and
    `page_info` are as the fixture has them: Zenoti's page names neither (unverified)."""
    center, page = call.params["center_id"], call.params["page"]
    params = {"page": page, "size": plan.PAGE_SIZE}
    answer = client.get(f"/v1/centers/{center}/members", MEMBERS_ENDPOINT, params)
    records = _records(answer, "members", "id", snapshots.path_hint("Membership", center))
    following = plan.memberships_call(center, page + 1)
    more = _more(answer.document.get("page_info"), page, len(records))
    return Result(answer.read_at_us, records, [following] if more else [])


def _sessions(client: api.Client, call: plan.Call) -> Result:
    """A page of the center's class sessions in a window. `page_details` is read as
    `page_info` is (its key names are undocumented: without a `total`, a full page is taken
    to have a next one)."""
    p = call.params
    answer = client.get(SESSIONS_ENDPOINT, SESSIONS_ENDPOINT, {**p, "size": plan.PAGE_SIZE})
    hint = snapshots.path_hint("ClassSession", p["center_id"])
    records = _records(answer, "sessions", "id", hint, _number_id)
    following = plan.sessions_call(p["center_id"], p["start_date"], p["end_date"], p["page"] + 1)
    more = _more(answer.document.get("page_details"), p["page"], len(records))
    return Result(answer.read_at_us, records, [following] if more else [])


def _packages(client: api.Client, call: plan.Call) -> Result:
    """A page of a guest's Series packages. The list key `guest_packages` is as the fixture
    has it (unverified); no paging object is documented: a full page has a next one."""
    p = call.params
    guest, page = p["guest_id"], p["page"]
    params = {"center_id": p["center_id"], "page_num": page, "page_size": plan.PAGE_SIZE}
    answer = client.get(f"/v1/guests/{guest}/packages", PACKAGES_ENDPOINT, params)
    hint = snapshots.path_hint("Package", p["center_id"])
    records = _records(answer, "guest_packages", "user_package_id", hint)
    following = plan.packages_call(p["center_id"], guest, page + 1)
    more = _more(None, page, len(records))
    return Result(answer.read_at_us, records, [following] if more else [])


def _records(
    answer: api.Answer,
    key: str,
    id_key: str,
    hint: str,
    check: Callable[[api.Answer, Any, str], object] | None = None,
) -> list[Record]:
    """Each element of the answer's array `key` as a record, its exact bytes; each must have
    an id at `id_key` (a GUID, unless `check` says otherwise)."""
    _member(answer, answer.document, key, list, "an array")
    check = check or _guid
    records = []
    for value, raw in api.split_array(answer.body, answer.endpoint, key):
        check(answer, value, f"{key}[].{id_key}")
        records.append(Record(hint, raw))
    return records


def _number_id(answer: api.Answer, row: Any, name: str) -> None:
    """An integer id (a class session's), or one written as a non-empty string."""
    value = row.get(name.rsplit(".", 1)[-1]) if isinstance(row, dict) else None
    if not (isinstance(value, int) and not isinstance(value, bool)):
        _text(answer, row, name)


def _more(info: Any, page: int, rows: int) -> bool:
    """Whether a page follows: by the paging object's `total` when it has one, else by a
    full page (an empty last page may then be read)."""
    total = info.get("total") if isinstance(info, dict) else None
    if isinstance(total, int) and not isinstance(total, bool):
        return rows > 0 and page * plan.PAGE_SIZE < total
    return rows == plan.PAGE_SIZE


def list_centers(client: api.Client) -> list[str]:
    """Every center of the organization, page after page (each page a call)."""
    centers: list[str] = []
    page = 1
    while True:
        answer = client.get(CENTERS_ENDPOINT, CENTERS_ENDPOINT, {"page": page, "size": 100})
        rows = _member(answer, answer.document, "centers", list, "an array")
        centers += [_guid(answer, row, "centers[].id") for row in rows]
        info = answer.document.get("page_info")
        total = info.get("total") if isinstance(info, dict) else None
        if not rows or not isinstance(total, int) or page * 100 >= total:
            return list(dict.fromkeys(centers))
        page += 1


def _member(
    answer: api.Answer, container: Any, key: str, kind: type, wanted: str, name: str = ""
) -> Any:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise api.shape_error(answer.endpoint, name or key, value, wanted)
    return value


def _guid(answer: api.Answer, row: Any, name: str) -> str:
    """A GUID at `name`, written as Zenoti wrote it."""
    value = _text(answer, row, name)
    try:
        uuid.UUID(value)
    except ValueError:
        raise api.shape_error(answer.endpoint, name, value, "a GUID") from None
    return value


def _text(answer: api.Answer, row: Any, name: str) -> str:
    """A non-empty string id at `name` (its last part is the key in `row`)."""
    value = row.get(name.rsplit(".", 1)[-1]) if isinstance(row, dict) else None
    if not isinstance(value, str) or not value:
        raise api.shape_error(answer.endpoint, name, value, "a non-empty string")
    return value
