"""Employee.Snapshot: one element of `GET /v1/centers/{id}/employees`, onto `employees`.

The list holds "employees that are active in the center" in a short shape (id, code, names,
gender, job): those columns are written and `deleted_at` cleared, since a listed employee is
active; the rest (consultant, payroll, roles, catalog) is left as the table has it. An
employee no longer listed is not marked deleted: absence from a list is not proof.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from worker.pipeline import projection
from worker.schemas import employees, parts
from worker.schemas import fields as zf


@dataclass(frozen=True, slots=True)
class ListedEmployee:
    employee_id: uuid.UUID
    code: str | None
    center_id: uuid.UUID | None
    first_name: str | None
    last_name: str | None
    gender: int | None
    job_id: uuid.UUID | None
    job_name: str | None


class ListedJobSchema(parts.Schema):
    job_id = zf.Guid(data_key="id")
    job_name = zf.Text(data_key="name")


class ListedEmployeeSchema(parts.Schema):
    record = ListedEmployee

    employee_id = zf.RequiredGuid(data_key="id")
    code = zf.Text()
    center_id = zf.Guid()  # not in the row: the center it was listed for (snapshots.py)
    personal_info = zf.Flattened(employees.PersonalInfoSchema)
    job_info = zf.Flattened(ListedJobSchema)


def _project(listed: ListedEmployee, applied: projection.Applied) -> projection.Projected:
    row = {**parts.columns(listed), "deleted_at": None, **applied.stamp()}
    return employees.TABLES[0].projected(row)


# Built once: schema objects are reused for every record.
LISTED_EMPLOYEE = ListedEmployeeSchema()

TABLES = ()

HANDLERS = {
    "Employee.Snapshot": projection.Handler(LISTED_EMPLOYEE, _project),
}
