"""Employee.Created, Updated and Deleted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

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


class _Part(Schema):
    """A nested object of the employee; loads into a dict its parent flattens."""

    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice


class PersonalInfoSchema(_Part):
    first_name = zf.Text(load_default=None)
    last_name = zf.Text(load_default=None)
    gender = fields.Integer(load_default=None, allow_none=True)


class JobInfoSchema(_Part):
    job_id = zf.Guid(load_default=None)
    job_name = zf.Text(load_default=None)
    # null in every sample, so its type is unknown: text takes a GUID or an integer alike
    designation_id = zf.Text(load_default=None)
    start_date = zf.LocalDateTime(load_default=None)
    end_date = zf.LocalDateTime(load_default=None)


class PayrollInfoSchema(_Part):
    include_in_payroll = fields.Integer(load_default=None, allow_none=True)


class RolesSchema(_Part):
    security_profile_id = zf.Guid(load_default=None)


class CatalogInfoSchema(_Part):
    show_in_catalog = fields.Boolean(load_default=None, allow_none=True)


def _part(schema: type[Schema]) -> fields.Nested:
    return fields.Nested(schema, load_default=None, allow_none=True)


class EmployeeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    employee_id = zf.Guid(data_key="id", required=True, allow_none=False)
    code = zf.Text(load_default=None)
    center_id = zf.Guid(load_default=None)
    is_consultant = fields.Boolean(load_default=None, allow_none=True)
    created_by = zf.Guid(load_default=None)
    personal_info = _part(PersonalInfoSchema)
    job_info = _part(JobInfoSchema)
    payroll_info = _part(PayrollInfoSchema)
    roles = _part(RolesSchema)
    catalog_info = _part(CatalogInfoSchema)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Employee:
        if data["employee_id"] is None:  # the nil GUID is no employee id
            raise ValidationError("Not a valid GUID.", field_name="id")
        nested = ("personal_info", "job_info", "payroll_info", "roles", "catalog_info")
        flat = parts.flatten(data, nested)
        return Employee(**{name: flat.get(name) for name in Employee.__slots__})


def columns(employee: Employee) -> dict[str, Any]:
    """An employee's fields as `employees` columns."""
    return parts.values(employee)


# Built once: schema objects are reused for every event.
EMPLOYEE = EmployeeSchema()


def _project(deletes: bool) -> projection.Projection:
    """Deleted sets deleted_at; Created and Updated clear it, so a re-create un-deletes."""

    def project(employee: Employee, applied: projection.Applied) -> projection.Projected:
        deleted_at = (applied.event_at or applied.received_at) if deletes else None
        row = {**columns(employee), "deleted_at": deleted_at, **applied.stamp()}
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
