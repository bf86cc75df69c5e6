"""Resolvers of staff profiles: onboarding, approval, search, photos."""

from __future__ import annotations

from bloodbank.domain.employees import Employee, Thumbnail
from bloodbank.domain.uploads import UploadTicket
from bloodbank.ports import Page
from resolvers.context import ResolverEvent


def my_employee_profile(event: ResolverEvent) -> Employee | None:
    return event.services.employees.me(event.caller)


def get_employee(event: ResolverEvent) -> Employee | None:
    return event.services.employees.get(event.caller, event.arguments["id"])


def search_employees(event: ResolverEvent) -> Page[Employee]:
    args = event.arguments
    return event.services.employees.search(
        event.caller,
        args.get("query"),
        args.get("department"),
        args.get("status"),
        args.get("limit"),
        args.get("next_token"),
    )


def create_employee_profile(event: ResolverEvent) -> Employee:
    values = dict(event.arguments["input"])
    employee_id = values.pop("id", None)
    return event.services.employees.create(event.caller, values, employee_id)


def update_employee_profile(event: ResolverEvent) -> Employee:
    values = dict(event.arguments["input"])
    employee_id = values.pop("id")
    expected_version = values.pop("expected_version")
    return event.services.employees.update(event.caller, employee_id, expected_version, values)


def approve_employee(event: ResolverEvent) -> Employee:
    return event.services.employees.approve(event.caller, event.arguments["id"])


def deactivate_employee(event: ResolverEvent) -> Employee:
    return event.services.employees.deactivate(event.caller, event.arguments["id"])


def request_employee_photo_upload(event: ResolverEvent) -> UploadTicket:
    args = event.arguments
    return event.services.employees.request_photo_upload(
        event.caller, args["content_type"], args.get("employee_id")
    )


def employee_phone(event: ResolverEvent) -> str | None:
    employee: Employee = event.source
    return event.services.employees.phone(event.caller, employee)


def thumbnail_url(event: ResolverEvent) -> str:
    thumbnail: Thumbnail = event.source
    return event.services.employees.thumbnail_url(thumbnail)
