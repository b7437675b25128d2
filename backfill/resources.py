"""Each kind of call: its request, the shape its answer must have, the records it yields
(each to enter the pipeline as one delivery) and the calls it adds (next page, details)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backfill import answers, plan
from backfill import client as api
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


def execute(client: api.Client, call: plan.Call) -> answers.Result:
    """Make the call; ApiShapeError when its answer does not fit. A call's key starts with its
    kind (`appointments/...`, `invoice/<id>`: plan.py)."""
    return _BY_KIND[call.key.split("/", 1)[0]](client, call)


def _appointments(client: api.Client, call: plan.Call) -> answers.Result:
    params = {**call.params, "include_no_show_cancel": "true"}
    answer = client.get(APPOINTMENTS_ENDPOINT, APPOINTMENTS_ENDPOINT, params)
    if not isinstance(answer.document, list):
        raise api.shape_error(answer.endpoint, "(answer)", answer.document, "an array")
    hint = snapshots.path_hint("Appointment", call.params["center_id"])
    records = []
    for value, raw in api.split_array(answer.body, answer.endpoint):
        answers.text(answer, value if isinstance(value, dict) else None, "[].appointment_id")
        records.append(answers.Record(hint, raw))
    return answers.Result(answer.read_at_us, records)


def _sales(client: api.Client, call: plan.Call) -> answers.Result:
    p = call.params
    body = {
        "center_ids": [p["center_id"]],
        "start_date": f"{p['start_date']} 00:00:00",
        "end_date": f"{p['end_date']} 23:59:59",
    }
    params = {"page": p["page"], "size": plan.PAGE_SIZE}
    answer = client.post(SALES_ENDPOINT, SALES_ENDPOINT, params, body)
    rows = answers.member(answer, answer.document, "sales", list, "an array")
    info = answers.member(answer, answer.document, "page_info", dict, "an object")
    total = answers.member(answer, info, "total", int, "a number", "page_info.total")
    more = []
    if plan.feeds(call, plan.INVOICES):
        invoices = dict.fromkeys(answers.guid(answer, row, "sales[].invoice_id") for row in rows)
        more += [plan.invoice_call(invoice_id) for invoice_id in invoices]
    if plan.feeds(call, plan.PACKAGES):
        bought = [row for row in rows if isinstance(row, dict) and _is_package(row)]
        guests = dict.fromkeys(answers.guid(answer, row, "sales[].guest_id") for row in bought)
        more += [plan.packages_call(p["center_id"], guest, 1) for guest in guests]
    following = plan.next_sales_page(call, total)
    return answers.Result(answer.read_at_us, [], more + ([following] if following else []))


def _is_package(row: dict[str, Any]) -> bool:
    """A report row selling a package (`item_type` "Package"; the report writes names)."""
    item_type = row.get("item_type")
    return isinstance(item_type, str) and item_type.strip().lower() == "package"


def _invoice(client: api.Client, call: plan.Call) -> answers.Result:
    invoice_id = call.params["invoice_id"]
    params = {"expand": ["InvoiceItems", "Appointments"]}
    answer = client.get(f"/v1/invoices/{invoice_id}", INVOICE_ENDPOINT, params)
    invoice = answers.member(answer, answer.document, "invoice", dict, "an object")
    answers.text(answer, invoice, "invoice.id")
    return answers.Result(
        answer.read_at_us, [answers.Record(snapshots.path_hint("Invoice"), answer.body)]
    )


def _employees(client: api.Client, call: plan.Call) -> answers.Result:
    center, page = call.params["center_id"], call.params["page"]
    params = {"page": page, "size": plan.PAGE_SIZE}
    answer = client.get(f"/v1/centers/{center}/employees", EMPLOYEES_ENDPOINT, params)
    records = answers.records(answer, "employees", "id", snapshots.path_hint("Employee", center))
    full = len(records) == plan.PAGE_SIZE
    return answers.Result(
        answer.read_at_us, records, [plan.employees_call(center, page + 1)] if full else []
    )


def _guests(client: api.Client, call: plan.Call) -> answers.Result:
    p = call.params
    answer = client.get(GUESTS_ENDPOINT, GUESTS_ENDPOINT, {**p, "size": plan.PAGE_SIZE})
    records = answers.records(answer, "guests", "id", snapshots.path_hint("Guest", p["center_id"]))
    # `page_Info` (capital I) as the guests list spells it; `page_info` as others do.
    info = answer.document.get("page_Info") or answer.document.get("page_info")
    total = info.get("total") if isinstance(info, dict) else None
    more = p["page"] * plan.PAGE_SIZE < total if isinstance(total, int) else len(records) > 0
    following = plan.guests_call(p["center_id"], p["last_updated"], p["page"] + 1)
    return answers.Result(answer.read_at_us, records, [following] if more and records else [])


def _memberships(client: api.Client, call: plan.Call) -> answers.Result:
    """A page of the center's members, unfiltered (see plan.py). The list key `members` and
    `page_info` are as the fixture has them: Zenoti's page names neither (unverified)."""
    center, page = call.params["center_id"], call.params["page"]
    params = {"page": page, "size": plan.PAGE_SIZE}
    answer = client.get(f"/v1/centers/{center}/members", MEMBERS_ENDPOINT, params)
    records = answers.records(answer, "members", "id", snapshots.path_hint("Membership", center))
    following = plan.memberships_call(center, page + 1)
    more = answers.more(answer.document.get("page_info"), page, len(records))
    return answers.Result(answer.read_at_us, records, [following] if more else [])


def _sessions(client: api.Client, call: plan.Call) -> answers.Result:
    """A page of the center's class sessions in a window. `page_details` is read as
    `page_info` is (its key names are undocumented: without a `total`, a full page is taken
    to have a next one)."""
    p = call.params
    answer = client.get(SESSIONS_ENDPOINT, SESSIONS_ENDPOINT, {**p, "size": plan.PAGE_SIZE})
    hint = snapshots.path_hint("ClassSession", p["center_id"])
    records = answers.records(answer, "sessions", "id", hint, answers.number_id)
    following = plan.sessions_call(p["center_id"], p["start_date"], p["end_date"], p["page"] + 1)
    more = answers.more(answer.document.get("page_details"), p["page"], len(records))
    return answers.Result(answer.read_at_us, records, [following] if more else [])


def _packages(client: api.Client, call: plan.Call) -> answers.Result:
    """A page of a guest's Series packages. The list key `guest_packages` is as the fixture
    has it (unverified); no paging object is documented: a full page has a next one."""
    p = call.params
    guest, page = p["guest_id"], p["page"]
    params = {"center_id": p["center_id"], "page_num": page, "page_size": plan.PAGE_SIZE}
    answer = client.get(f"/v1/guests/{guest}/packages", PACKAGES_ENDPOINT, params)
    hint = snapshots.path_hint("Package", p["center_id"])
    records = answers.records(answer, "guest_packages", "user_package_id", hint)
    following = plan.packages_call(p["center_id"], guest, page + 1)
    more = answers.more(None, page, len(records))
    return answers.Result(answer.read_at_us, records, [following] if more else [])


def list_centers(client: api.Client) -> list[str]:
    """Every center of the organization, page after page (each page a call)."""
    centers: list[str] = []
    page = 1
    while True:
        answer = client.get(CENTERS_ENDPOINT, CENTERS_ENDPOINT, {"page": page, "size": 100})
        rows = answers.member(answer, answer.document, "centers", list, "an array")
        centers += [answers.guid(answer, row, "centers[].id") for row in rows]
        info = answer.document.get("page_info")
        total = info.get("total") if isinstance(info, dict) else None
        if not rows or not isinstance(total, int) or page * 100 >= total:
            return list(dict.fromkeys(centers))
        page += 1


_BY_KIND: dict[str, Callable[[api.Client, plan.Call], answers.Result]] = {
    "appointments": _appointments,
    "sales": _sales,
    "employees": _employees,
    "guests": _guests,
    "memberships": _memberships,
    "classes": _sessions,
    "packages": _packages,
    "invoice": _invoice,
}
