"""Staff profiles in the single table (see ACCESS_PATTERNS.md, "Employees")."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from bloodbank.cursor import CursorCodec
from bloodbank.domain.employees import (
    Employee,
    EmployeeRole,
    EmployeeStatus,
    Personal,
    Photo,
    PhotoUpload,
    PhotoUploadStatus,
    Search,
    Thumbnail,
)
from bloodbank.domain.lazy import Lazy
from bloodbank.errors import Conflict
from bloodbank.ports import FieldCipher, Page
from bloodbank.storage import keys, transactions
from bloodbank.storage.donors import seal_into, unsealer
from bloodbank.storage.models import EmployeeItem, TableBinding, TableItem
from bloodbank.storage.paging import token_page

_SEALED = ("phone",)


def _photo_json(photo: Photo | None) -> str | None:
    if photo is None:
        return None
    return json.dumps(
        {
            "upload_id": photo.upload_id,
            "processed_at": photo.processed_at.isoformat(),
            "thumbnails": [[t.size, t.key, t.content_type, t.bytes] for t in photo.thumbnails],
        },
        separators=(",", ":"),
    )


def _photo(raw: str | None) -> Photo | None:
    if not raw:
        return None
    value = json.loads(raw)
    return Photo(
        upload_id=value["upload_id"],
        processed_at=datetime.fromisoformat(value["processed_at"]),
        thumbnails=tuple(Thumbnail(int(s), k, t, int(b)) for s, k, t, b in value["thumbnails"]),
    )


def _upload_json(upload: PhotoUpload | None) -> str | None:
    if upload is None:
        return None
    return json.dumps(
        {
            "upload_id": upload.upload_id,
            "status": upload.status.value,
            "at": upload.at.isoformat(),
            "reason": upload.reason,
        },
        separators=(",", ":"),
    )


def _upload(raw: str | None) -> PhotoUpload | None:
    if not raw:
        return None
    value = json.loads(raw)
    return PhotoUpload(
        value["upload_id"],
        PhotoUploadStatus(value["status"]),
        datetime.fromisoformat(value["at"]),
        value["reason"],
    )


def _to_item(employee: Employee, cipher: FieldCipher, table: str) -> EmployeeItem:
    item = EmployeeItem(
        employee_id=employee.id,
        email=employee.email,
        first_name=employee.first_name,
        last_name=employee.last_name,
        preferred_name=employee.preferred_name,
        job_title=employee.job_title,
        department=employee.department,
        role=employee.role.value if employee.role else None,
        status=employee.status.value,
        created_at=employee.created_at,
        updated_at=employee.updated_at,
        created_by=employee.created_by,
        approved_at=employee.approved_at,
        approved_by=employee.approved_by,
        version=employee.version,
        photo=_photo_json(employee.photo),
        last_upload=_upload_json(employee.last_upload),
    )
    item.set_key(keys.employee(employee.id))
    item.set_index(keys.employees_by_name(employee.sort_name, employee.id))
    if employee.department_key:
        item.set_index(keys.employees_of_department(employee.department_key, employee.sort_name, employee.id))
    phone = employee.phone
    seal_into(item, cipher, table, {"phone": phone} if phone is not None else {})
    return item


def _to_employee(item: EmployeeItem, cipher: FieldCipher, table: str) -> Employee:
    load = unsealer(item, cipher, table, _SEALED)
    return Employee(
        id=item.employee_id,
        email=item.email,
        first_name=item.first_name,
        last_name=item.last_name,
        preferred_name=item.preferred_name,
        job_title=item.job_title,
        department=item.department,
        role=EmployeeRole(item.role) if item.role else None,
        status=EmployeeStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        created_by=item.created_by,
        approved_at=item.approved_at,
        approved_by=item.approved_by,
        version=int(item.version),
        photo=_photo(item.photo),
        last_upload=_upload(item.last_upload),
        private=Lazy(load=lambda: Personal(phone=load().get("phone"))),
    )


class DynamoEmployees:
    """Implements ``EmployeeRepository``: one item a profile, written whole under a version check."""

    def __init__(self, binding: TableBinding, cursors: CursorCodec, cipher: FieldCipher) -> None:
        self._binding = binding
        self._cursors = cursors
        self._cipher = cipher

    def _item(self, employee: Employee) -> EmployeeItem:
        return _to_item(employee, self._cipher, self._binding.name)

    def get(self, employee_id: str, *, consistent: bool = False) -> Employee | None:
        key = keys.employee(employee_id)
        try:
            item = EmployeeItem.get(key.pk, key.sk, consistent_read=consistent)
        except DoesNotExist:
            return None
        return _to_employee(item, self._cipher, self._binding.name)

    def create(self, employee: Employee) -> None:
        try:
            transactions.save(self._item(employee), EmployeeItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict(
                    "This employee already has a profile: change it with updateEmployeeProfile"
                ) from None
            raise

    def save(self, employee: Employee, previous: Employee) -> None:
        try:
            transactions.save(self._item(employee), EmployeeItem.version == previous.version)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict(
                    "The profile was changed by someone else since you read it; reload it and try again"
                ) from None
            raise

    def search(self, wanted: Search, limit: int, next_token: str | None) -> Page[Employee]:
        if wanted.department is None:
            index, partition = "gsi3", keys.ALL_EMPLOYEES
            sort_key: Any = TableItem.gsi3sk
        else:
            index, partition = "gsi1", keys.employees_of_department_partition(wanted.department)
            sort_key = TableItem.gsi1sk
        found, token = token_page(
            self._cursors,
            wanted.scope,
            index,
            partition,
            limit,
            next_token,
            range_condition=sort_key.startswith(wanted.name_prefix) if wanted.name_prefix else None,
            filter_condition=(EmployeeItem.status == wanted.status.value) if wanted.status else None,
        )
        items = [
            _to_employee(i, self._cipher, self._binding.name) for i in found if isinstance(i, EmployeeItem)
        ]
        return Page(items, token)
