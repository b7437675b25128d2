"""What a backfill calls: resources x centers x windows → calls, and the calls an answer adds.

Appointments: `GET /v1/appointments` per center in 7-day windows (Zenoti refuses more) from
--since to --until plus a forward horizon (bookings made during the outage for later dates),
cancelled and no-show included. Invoices: the sales accrual report per center in 7-day windows
(paged, 100 rows a page) lists the invoices of the window; each distinct invoice is then read
in full (`GET /v1/invoices/{id}`, the Invoice.Closed shape). Employees: the center's list of
active employees, page by page (no window: it is today's state). Guests: the center's guests
`last_updated` since --since, page by page. Memberships: the center's members, page by page,
unfiltered (today's state: whether `last_updated_date` means "changed since" is undocumented,
and a filter that meant "on that date" would drop changes silently). Classes: the center's
class sessions in 7-day windows over the appointments' dates (horizon included), page by page;
their bookings are not read (see the README). Packages: per guest (Zenoti lists them no other
way), for each guest the sales report rows of the window show buying a package (item_type
Package); the report read for invoices serves both. Appointment and class windows overlap
by a day at their edges (whether Zenoti's end date is inclusive is not documented): that day
is read twice, and its records arrive the second time as duplicates.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

APPOINTMENTS, INVOICES, EMPLOYEES, GUESTS = "appointments", "invoices", "employees", "guests"
MEMBERSHIPS, CLASSES, PACKAGES = "memberships", "classes", "packages"
RESOURCES = (APPOINTMENTS, INVOICES, EMPLOYEES, GUESTS, MEMBERSHIPS, CLASSES, PACKAGES)
# Guests only when asked: whether `last_updated` means "changed since" is undocumented, and if
# Zenoti ignored it a run would list every guest of every center. Memberships by default: one
# call per 100 members of a center, whatever the outage's length. Classes only when asked: as
# many calls a center as appointments, though most centers hold no classes. Packages only when
# asked: one call per guest who bought a package in the window.
DEFAULT_RESOURCES = (APPOINTMENTS, INVOICES, EMPLOYEES, MEMBERSHIPS)
CENTERS = "centers"
WINDOW_DAYS = 7
PAGE_SIZE = 100  # Zenoti's most per page (422 above)


@dataclass(frozen=True, slots=True)
class Call:
    """One API call of a run: `key` is unique in the run; `params` what it sends."""

    key: str
    resource: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """What `zenoti-ingest backfill` was asked."""

    source: str
    since: date
    until: date
    resources: tuple[str, ...] = DEFAULT_RESOURCES
    centers: tuple[str, ...] = ()  # none: every center the organization lists
    horizon_days: int = 90
    # Read the details of invoices stored closed already (a webhook delivered them) again too.
    reread_closed: bool = False

    def key(self) -> str:
        """The same arguments give the same key: a run started again resumes its namesake."""
        canonical = json.dumps(
            [
                self.source,
                self.since.isoformat(),
                self.until.isoformat(),
                sorted(self.resources),
                sorted(self.centers),
                self.horizon_days,
                self.reread_closed,
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def windows(first: date, last: date) -> list[tuple[date, date]]:
    """7-day windows from `first` covering `last`: (start, start + 7 days), so that each
    window's end is the next one's start."""
    days = (last - first).days + 1
    starts = [first + timedelta(days=WINDOW_DAYS * n) for n in range(math.ceil(days / WINDOW_DAYS))]
    return [(start, start + timedelta(days=WINDOW_DAYS)) for start in starts]


def plan(request: Request, centers: list[str]) -> list[Call]:
    """The calls known before any answer: lists per resource, center and window."""
    calls: list[Call] = []
    horizon = request.until + timedelta(days=request.horizon_days)
    if APPOINTMENTS in request.resources:
        for center in centers:
            for start, end in windows(request.since, horizon):
                calls.append(appointments_call(center, start, end))
    # The sales report lists the invoices and the package buyers: read once for both.
    fed = [r for r in (INVOICES, PACKAGES) if r in request.resources]
    if fed:
        for center in centers:
            for start, end in windows(request.since, request.until):
                calls.append(sales_call(center, start, end, 1, fed))
    if EMPLOYEES in request.resources:
        calls += [employees_call(center, 1) for center in centers]
    if GUESTS in request.resources:
        calls += [guests_call(center, request.since, 1) for center in centers]
    if MEMBERSHIPS in request.resources:
        calls += [memberships_call(center, 1) for center in centers]
    if CLASSES in request.resources:
        for center in centers:
            calls += [sessions_call(center, s, e, 1) for s, e in windows(request.since, horizon)]
    return calls


def appointments_call(center: str, start: date, end: date) -> Call:
    params = {"center_id": center, "start_date": start.isoformat(), "end_date": end.isoformat()}
    return Call(f"appointments/{center}/{start}", APPOINTMENTS, params)


def sales_call(
    center: str, start: date, end: date, page: int, fed: list[str] | None = None
) -> Call:
    """A page of the sales accrual report: one row per invoice item of the window. `fed`: the
    resources its rows give calls to (invoices, packages); the call counts as the first."""
    fed = fed or [INVOICES]
    params = {
        "center_id": center,
        "start_date": start.isoformat(),
        "end_date": (end - timedelta(days=1)).isoformat(),
        "page": page,
        "feeds": fed,
    }
    return Call(f"sales/{center}/{start}/{page}", fed[0], params)


def feeds(call: Call, resource: str) -> bool:
    """Whether a report call's rows give calls to `resource` (a call checkpointed before
    packages were read feeds invoices only)."""
    return resource in call.params.get("feeds", [INVOICES])


def employees_call(center: str, page: int) -> Call:
    """A page of the center's active employees (no paging object: a short page is the last)."""
    return Call(f"employees/{center}/{page}", EMPLOYEES, {"center_id": center, "page": page})


def guests_call(center: str, since: date | str, page: int) -> Call:
    """A page of the center's guests updated since `since` (semantics unverified)."""
    params = {"center_id": center, "last_updated": str(since), "page": page}
    return Call(f"guests/{center}/{page}", GUESTS, params)


def memberships_call(center: str, page: int) -> Call:
    """A page of the center's members: every membership it lists, whatever its status."""
    params = {"center_id": center, "page": page}
    return Call(f"memberships/{center}/{page}", MEMBERSHIPS, params)


def sessions_call(center: str, start: date | str, end: date | str, page: int) -> Call:
    """A page of the center's class sessions starting in a window."""
    params = {"center_id": center, "start_date": str(start), "end_date": str(end), "page": page}
    return Call(f"classes/{center}/{start}/{page}", CLASSES, params)


def packages_call(center: str, guest: str, page: int) -> Call:
    """A page of a guest's Series packages (page_num/page_size, no paging object)."""
    params = {"center_id": center, "guest_id": guest, "page": page}
    return Call(f"packages/{center}/{guest}/{page}", PACKAGES, params)


def invoice_of(call: Call) -> str | None:
    """The invoice a details call reads; None for other calls."""
    return call.params.get("invoice_id")


def invoice_call(invoice_id: str) -> Call:
    return Call(f"invoice/{invoice_id}", INVOICES, {"invoice_id": invoice_id})


def next_sales_page(call: Call, total: int) -> Call | None:
    """The report's next page, when rows remain past this one."""
    page = call.params["page"]
    if page * PAGE_SIZE >= total:
        return None
    params = {**call.params, "page": page + 1}
    key = f"sales/{params['center_id']}/{params['start_date']}/{page + 1}"
    return Call(key, call.resource, params)


def seconds_for(calls: int, window_seconds: float, calls_per_window: int) -> float:
    """How long `calls` take at the configured pace (rate.MARGIN aside)."""
    return calls * window_seconds / calls_per_window
