"""Package.Snapshot: one element of `GET /v1/guests/{id}/packages`, onto `guest_packages`.

The list's rows have the Guest.Package.Creation body's shape (../shared/zenoti/api/README.md,
"Guest packages"): they load and project as that event does (worker/schemas/packages.py),
writing only the columns whose keys the row has. Like the webhooks' bodies, a row does not
name its guest: `guest_id` is left as the table has it (the package's invoice, `invoice_id`,
names the guest in `invoices`). Series packages only: the call does not list Day packages.
"""

from __future__ import annotations

from worker.schemas import packages

TABLES = ()

# The very handler of Guest.Package.Creation: same shape, same columns, newest wins.
HANDLERS = {
    "Package.Snapshot": packages.HANDLERS["Guest.Package.Creation"],
}
