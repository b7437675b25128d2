"""Employee.Created, Updated and Deleted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import parts


@dataclass(frozen=True, slots=True)
class Employee:
    """An employee as the `employees` table keeps it; contact details, birth date, address
    and pay stay in the event's data (see the migration's comment)."""

    employee_id: uuid.UUID
    code: str | None
    center_id: uuid.UUID | None
    is_consultant: bool | None
    created_by: uuid.UUID | None
    first_name: str | None
    last_name: str | None
    gender: int | None
    job_id: uuid.UUID | None
    job_name: str | None
    designation_id: str | None
    start_date: datetime | None
    end_date: datetime | None
    include_in_payroll: int | None
    security_profile_id: uuid.UUID | None
    show_in_catalog: bool | None


class PersonalInfoSchema(parts.Schema):
    first_name = zf.Text()
    last_name = zf.Text()
    gender = zf.Integer()


class JobInfoSchema(parts.Schema):
    job_id = zf.Guid()
    job_name = zf.Text()
    # null in every sample, so its type is unknown: text takes a GUID or an integer alike
    designation_id = zf.Text()
    start_date = zf.LocalDateTime()
    end_date = zf.LocalDateTime()


class PayrollInfoSchema(parts.Schema):
    include_in_payroll = zf.Integer()


class RolesSchema(parts.Schema):
    security_profile_id = zf.Guid()


class CatalogInfoSchema(parts.Schema):
    show_in_catalog = zf.Boolean()


class EmployeeSchema(parts.Schema):
    record = Employee

    employee_id = zf.RequiredGuid(data_key="id")
    code = zf.Text()
    center_id = zf.Guid()
    is_consultant = zf.Boolean()
    created_by = zf.Guid()
    personal_info = zf.Flattened(PersonalInfoSchema)
    job_info = zf.Flattened(JobInfoSchema)
    payroll_info = zf.Flattened(PayrollInfoSchema)
    roles = zf.Flattened(RolesSchema)
    catalog_info = zf.Flattened(CatalogInfoSchema)


# Built once: schema objects are reused for every event.
EMPLOYEE = EmployeeSchema()


def _project(deletes: bool) -> projection.Projection:
    """Deleted sets deleted_at; Created and Updated clear it, so a re-create un-deletes."""

    def project(employee: Employee, applied: projection.Applied) -> projection.Projected:
        deleted_at = applied.at if deletes else None
        row = {**parts.columns(employee), "deleted_at": deleted_at, **applied.stamp()}
        return projection.Projected(
            str(employee.employee_id), employee.center_id, {"employees": [row]}
        )

    return project


TABLES = (projection.Table("employees", key="employee_id"),)

HANDLERS = {
    "Employee.Created": projection.Handler(EMPLOYEE, _project(deletes=False)),
    "Employee.Updated": projection.Handler(EMPLOYEE, _project(deletes=False)),
    "Employee.Deleted": projection.Handler(EMPLOYEE, _project(deletes=True)),
}
