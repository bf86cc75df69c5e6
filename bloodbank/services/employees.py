"""Staff profiles: self-onboarding with admin approval, edits under a version check, search, photos.

Who may do what (groups of the user pool; employees are Staff or Admins):
- a staff member creates their own profile (their ``sub`` is its id), PENDING until an admin
  approves it; an admin creates anyone's, ACTIVE at once;
- an employee changes their own profile's personal fields; ``role`` and ``department`` only admins
  set; a deactivated employee changes nothing; admins change anyone's;
- staff see ACTIVE colleagues, themselves and nobody else's phone number; admins see everything;
- admins approve and deactivate (not themselves).

A photo is uploaded with a presigned form (``request_photo_upload``) and processed by the bucket's
trigger (``process_photo``): a bad file marks the upload REJECTED with the reason on the profile and
never raises; a failure of a dependency (DynamoDB, S3) raises, so that Lambda retries the event, and
the retry finds the same upload id and does it once.

Creations and approvals are announced on the employee topic after they are stored. An announcement
that fails is logged (by employee id) and not retried: the profile stands, and subscribers can
always read the current state with ``getEmployee``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bloodbank.domain import employees as rules
from bloodbank.domain import text
from bloodbank.domain.employees import (
    Employee,
    EmployeeEvent,
    EmployeeEventType,
    EmployeeStatus,
    Photo,
    PhotoRejected,
    Thumbnail,
)
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import BadUserInput, Conflict, DependencyUnavailable, Forbidden, NotFound
from bloodbank.ports import (
    Clock,
    DocumentStore,
    EmployeeEvents,
    EmployeeRepository,
    FileTooLarge,
    IdGenerator,
    Page,
    PhotoFiles,
    PhotoRenderer,
)
from bloodbank.services.donors import page_size

log = logging.getLogger("bloodbank.employees")

SAVE_ATTEMPTS = 3  # a photo lands while the employee edits: read again and apply it to the new version


@dataclass(frozen=True, slots=True)
class PhotoResult:
    """What one upload's processing did: ACCEPTED or REJECTED (``reason`` says why), or ``skipped``
    (not an employee photo, no such profile, done already)."""

    key: str
    outcome: str
    employee_id: str | None = None
    reason: str = ""


def _is_admin(identity: Identity) -> bool:
    return Group.ADMINS in identity.groups


def _checked_id(value: str, where: str = "id") -> str:
    try:
        return text.identifier(where, value)
    except text.Invalid as bad:
        raise BadUserInput.of([bad.problem]) from None


def _require_employee(identity: Identity) -> None:
    if not identity.is_staff:
        raise Forbidden("Only blood service staff have employee profiles")


@dataclass
class EmployeeService:
    repository: EmployeeRepository
    uploads: DocumentStore
    files: PhotoFiles
    renderer: PhotoRenderer
    events: EmployeeEvents
    clock: Clock
    new_id: IdGenerator
    bucket: str = ""  # the documents bucket; events of another bucket are skipped
    max_bytes: int = rules.MAX_PHOTO_BYTES

    # --- profiles -----------------------------------------------------------------------------
    def create(
        self, identity: Identity, values: Mapping[str, object], employee_id: str | None = None
    ) -> Employee:
        """Staff create their own profile (PENDING); admins anyone's (ACTIVE, approved by them)."""
        _require_employee(identity)
        admin = _is_admin(identity)
        target = identity.sub if employee_id is None else _checked_id(employee_id, "input.id")
        if target != identity.sub and not admin:
            raise Forbidden("Only admins can create a profile for someone else")
        refused = rules.forbidden_fields(values, is_admin=admin)
        if refused:
            raise Forbidden(f"Only admins can set {', '.join(refused)}")
        cleaned = rules.validate_new(values)
        employee = rules.new_employee(target, cleaned, self.clock(), identity.sub, approved=admin)
        self.repository.create(employee)
        self._announce(EmployeeEventType.PROFILE_CREATED, employee, identity.sub)
        if employee.status is EmployeeStatus.ACTIVE:
            self._announce(EmployeeEventType.PROFILE_APPROVED, employee, identity.sub)
        return employee

    def me(self, identity: Identity) -> Employee | None:
        _require_employee(identity)
        return self.repository.get(identity.sub)

    def get(self, identity: Identity, employee_id: str) -> Employee | None:
        """Null for a profile the caller may not see (another's that is not ACTIVE, for staff)."""
        _require_employee(identity)
        employee = self.repository.get(_checked_id(employee_id))
        if employee is None or not self._may_see(identity, employee):
            return None
        return employee

    def update(
        self, identity: Identity, employee_id: str, expected_version: int, values: Mapping[str, object]
    ) -> Employee:
        _require_employee(identity)
        employee_id = _checked_id(employee_id, "input.id")
        admin = _is_admin(identity)
        if employee_id != identity.sub and not admin:
            raise Forbidden("Employees can only change their own profile")
        refused = rules.forbidden_fields(values, is_admin=admin)
        if refused:
            raise Forbidden(f"Only admins can change {', '.join(refused)}")
        changes = rules.validate_changes(values)
        current = self._current(employee_id)
        if current.status is EmployeeStatus.DEACTIVATED and not admin:
            raise Forbidden("This profile is deactivated: only an admin can change it")
        rules.check_version(current, expected_version)
        updated = rules.apply_changes(current, changes, self.clock())
        self.repository.save(updated, current)
        return updated

    def approve(self, identity: Identity, employee_id: str) -> Employee:
        """PENDING or DEACTIVATED -> ACTIVE (admins); an ACTIVE profile is returned as it is."""
        self._require_admin(identity, "approve employees")
        current = self._current(_checked_id(employee_id))
        approved = rules.approved(current, identity.sub, self.clock())
        if approved is current:
            return current
        self.repository.save(approved, current)
        self._announce(EmployeeEventType.PROFILE_APPROVED, approved, identity.sub)
        return approved

    def deactivate(self, identity: Identity, employee_id: str) -> Employee:
        self._require_admin(identity, "deactivate employees")
        employee_id = _checked_id(employee_id)
        if employee_id == identity.sub:
            raise Forbidden("Admins cannot deactivate their own profile: ask another admin")
        current = self._current(employee_id)
        changed = rules.deactivated(current, self.clock())
        if changed is not current:
            self.repository.save(changed, current)
        return changed

    def search(
        self,
        identity: Identity,
        query: str | None,
        department: str | None,
        status: EmployeeStatus | None,
        limit: int | None,
        next_token: str | None,
    ) -> Page[Employee]:
        """By name prefix (family name first, any case and accents), within a department if given;
        staff find ACTIVE colleagues only, admins any status (all unless ``status`` is given)."""
        _require_employee(identity)
        if not _is_admin(identity):
            if status not in (None, EmployeeStatus.ACTIVE):
                raise Forbidden("Only admins can search profiles that are not ACTIVE")
            status = EmployeeStatus.ACTIVE
        wanted = rules.search(query, department, status)
        return self.repository.search(wanted, page_size(limit), next_token)

    def phone(self, identity: Identity, employee: Employee) -> str | None:
        """The employee's phone: for themself and admins; null for colleagues."""
        if identity.sub == employee.id or _is_admin(identity):
            return employee.phone
        return None

    # --- photos -------------------------------------------------------------------------------
    def request_photo_upload(
        self, identity: Identity, content_type: str, employee_id: str | None = None
    ) -> UploadTicket:
        """A form to upload a profile photo: the employee's own, or anyone's for admins."""
        _require_employee(identity)
        content_type = rules.validate_content_type(content_type)
        target = identity.sub if employee_id is None else _checked_id(employee_id, "employeeId")
        if target != identity.sub and not _is_admin(identity):
            raise Forbidden("Employees can only upload their own photo")
        employee = self.repository.get(target)
        if employee is None:
            raise NotFound("No profile yet: create it with createEmployeeProfile, then upload the photo")
        if employee.status is EmployeeStatus.DEACTIVATED and not _is_admin(identity):
            raise Forbidden("This profile is deactivated: only an admin can change it")
        key = rules.upload_key(target, self.new_id())
        return self.uploads.upload_ticket(key, content_type, self.max_bytes, rules.UPLOAD_TTL_SECONDS)

    def thumbnail_url(self, thumbnail: Thumbnail) -> str:
        """Whoever may see the profile may see its photo: a link valid a few minutes."""
        return self.files.url(thumbnail.key, rules.THUMBNAIL_URL_TTL_SECONDS)

    def process_photo(self, bucket: str, key: str) -> PhotoResult:
        """Check an uploaded photo, write its thumbnails and record them (or the rejection)."""
        parsed = rules.parse_upload_key(key)
        if parsed is None or (self.bucket and bucket != self.bucket):
            return PhotoResult(key, "skipped", reason="not an employee photo upload")
        employee_id, upload_id = parsed
        employee = self.repository.get(employee_id, consistent=True)
        if employee is None:
            return PhotoResult(key, "skipped", employee_id, "no such profile")
        if employee.last_upload is not None and employee.last_upload.upload_id == upload_id:
            return PhotoResult(key, "skipped", employee_id, "done already")
        try:
            photo = self._thumbnails(employee_id, upload_id, key)
        except PhotoRejected as rejected:
            reason, now = rejected.reason, self.clock()
            self._record(employee_id, lambda e: rules.with_rejection(e, upload_id, reason, now))
            return PhotoResult(key, "REJECTED", employee_id, reason)
        self._record(employee_id, lambda e: rules.with_photo(e, photo, photo.processed_at))
        return PhotoResult(key, "ACCEPTED", employee_id)

    def _thumbnails(self, employee_id: str, upload_id: str, key: str) -> Photo:
        limit = self.max_bytes // (1024 * 1024)
        try:
            stored = self.files.read(key, self.max_bytes)
        except LookupError:
            raise PhotoRejected("the uploaded file is gone: upload it again") from None
        except FileTooLarge:
            raise PhotoRejected(f"the file is larger than {limit} MiB: upload a smaller photo") from None
        if not stored.data:
            raise PhotoRejected("the file is empty")
        content_type = stored.content_type.strip().lower()
        if content_type not in rules.ALLOWED_CONTENT_TYPES:
            raise PhotoRejected("only JPEG, PNG or WebP photos are accepted")
        thumbnails = []
        for rendered in self.renderer.render(stored.data, content_type):
            thumb_key = rules.thumbnail_key(employee_id, upload_id, rendered.size)
            self.files.write(thumb_key, rendered.data, rendered.content_type)
            thumbnails.append(Thumbnail(rendered.size, thumb_key, rendered.content_type, len(rendered.data)))
        return Photo(upload_id, tuple(thumbnails), self.clock())

    def _record(self, employee_id: str, change: Callable[[Employee], Employee]) -> None:
        """Apply ``change`` to the latest version, reading again if someone saved in between."""
        for attempt in range(SAVE_ATTEMPTS):
            current = self.repository.get(employee_id, consistent=True)
            if current is None:
                return  # the profile is gone: nothing to record on
            try:
                self.repository.save(change(current), current)
                return
            except Conflict:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise

    # --- helpers ------------------------------------------------------------------------------
    def _current(self, employee_id: str) -> Employee:
        current = self.repository.get(employee_id, consistent=True)
        if current is None:
            raise NotFound(f"No employee profile with id {employee_id}")
        return current

    @staticmethod
    def _may_see(identity: Identity, employee: Employee) -> bool:
        return employee.status is EmployeeStatus.ACTIVE or identity.sub == employee.id or _is_admin(identity)

    @staticmethod
    def _require_admin(identity: Identity, what: str) -> None:
        if not _is_admin(identity):
            raise Forbidden(f"Only admins can {what}")

    def _announce(self, kind: EmployeeEventType, employee: Employee, by: str) -> None:
        event = EmployeeEvent(kind, employee.id, employee.status, employee.department, by, self.clock())
        try:
            self.events.publish(event)
        except DependencyUnavailable as exc:
            log.error(
                "employee event not sent",
                extra={"employee_id": employee.id, "event": kind.value, "why": str(exc)},
            )
