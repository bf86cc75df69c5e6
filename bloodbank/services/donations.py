"""Donations: eligibility, recording a donation with its units, deferrals, history, reminders."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bloodbank.domain import donations as rules
from bloodbank.domain import donors as donor_rules
from bloodbank.domain import text
from bloodbank.domain.blood import Component
from bloodbank.domain.donations import Anticoagulant, BloodUnit, Donation, DonationType, Reminder
from bloodbank.domain.donors import Donor
from bloodbank.domain.eligibility import (
    RULE_SETS,
    Deferral,
    DeferralReason,
    DonorFacts,
    Eligibility,
    PastDonation,
    assess,
    assess_all,
)
from bloodbank.domain.identity import Identity
from bloodbank.domain.isbt import make_din
from bloodbank.domain.lazy import Lazy
from bloodbank.domain.notifications import Channel, Contact, NotificationKind, NotificationPreferences
from bloodbank.domain.organisations import Site
from bloodbank.errors import BadUserInput, Conflict, FieldProblem, Forbidden, NotEligible, NotFound
from bloodbank.observability import DISCARDED
from bloodbank.ports import (
    Clock,
    DinSequences,
    DirectoryRepository,
    DonationRepository,
    DonorRepository,
    IdGenerator,
    Metrics,
    Page,
    Reminders,
    UnitRepository,
)
from bloodbank.services.donors import page_size

log = logging.getLogger("bloodbank.donations")

# A donation may be entered up to this long after it was collected (mobile drives enter data late).
LATE_ENTRY = timedelta(hours=72)
CLOCK_SKEW = timedelta(minutes=5)
SITE_CACHE_SECONDS = 60.0
MAX_DEFERRAL_DAYS = 3650


class Notifications(Protocol):
    """What this service needs from services.notifications.NotificationService."""

    def notify(
        self,
        kind: NotificationKind,
        contact: Contact,
        preferences: NotificationPreferences,
        reference: str,
        facts: Mapping[str, str],
    ) -> list[str]: ...


def contact_of(donor: Donor) -> Contact:
    """The donor's addresses; the phone (encrypted at rest) is decrypted only if SMS may be used."""
    prefs = donor.preferences
    wants_sms = prefs.consented_at is not None and Channel.SMS in prefs.channels
    return Contact(donor.id, donor.first_name, donor.email, donor.phone if wants_sms else None)


@dataclass(frozen=True, slots=True)
class RecordedDonation:
    donation: Donation
    units: list[BloodUnit]
    donor: Donor  # as it is after the donation


@dataclass
class DonationService:
    donors: DonorRepository
    donations: DonationRepository
    sequences: DinSequences
    units: UnitRepository
    reminders: Reminders
    directory: DirectoryRepository
    notifications: Notifications
    clock: Clock
    new_id: IdGenerator
    metrics: Metrics = DISCARDED
    _sites: dict[str, Site] = field(default_factory=dict)
    _sites_read_at: float = float("-inf")

    # --- reading --------------------------------------------------------------------------------
    def _site(self, site_id: str, where: str = "input.siteId") -> Site:
        if time.monotonic() - self._sites_read_at > SITE_CACHE_SECONDS or site_id not in self._sites:
            self._sites = {s.id: s for s in self.directory.sites()}
            self._sites_read_at = time.monotonic()
        site = self._sites.get(site_id)
        if site is None:
            raise BadUserInput.of([FieldProblem(where, "is not a known site")])
        return site

    def check_may_see(self, identity: Identity, donor_id: str) -> None:
        if not identity.may_see_donor(donor_id):
            raise Forbidden("Donors can only see their own donations and eligibility")

    def _facts(self, donor: Donor, weight_kg: float | None = None) -> DonorFacts:
        return DonorFacts(
            date_of_birth=donor.date_of_birth,
            sex=donor.sex,
            weight_kg=weight_kg if weight_kg is not None else donor.weight_kg,
            deferrals=donor.deferrals,
            history=donor.recent_donations,
            donated_before=donor.donation_count > 0,
        )

    def eligibility(self, identity: Identity, donor: Donor) -> list[Eligibility]:
        """Per donation type: may the donor give it now, from when, and why not."""
        self.check_may_see(identity, donor.id)
        rules_of_site = RULE_SETS[self._site(donor.site_id, "siteId").jurisdiction]
        return assess_all(rules_of_site, self._facts(donor), self.clock())

    def history(
        self, identity: Identity, donor: Donor, limit: int | None, next_token: str | None
    ) -> Page[Donation]:
        self.check_may_see(identity, donor.id)
        return self.donations.page(donor.id, page_size(limit), next_token)

    def units_by_id(self, unit_ids: Sequence[str]) -> list[BloodUnit | None]:
        """Units in the order asked (None where missing); callers check access to the donation first."""
        found = {u.id: u for u in self.units.get_many(unit_ids)}
        return [found.get(u) for u in unit_ids]

    # --- recording ------------------------------------------------------------------------------
    def record(self, identity: Identity, values: Mapping[str, object]) -> RecordedDonation:
        """Check eligibility at the moment of donation, then write everything in one transaction."""
        if not identity.is_staff:
            raise Forbidden("Only blood service staff can record donations")
        request = _validate(values, self.clock())
        for attempt in range(3):
            try:
                recorded = self._record_once(identity, request)
                break
            except Conflict:
                if attempt == 2:
                    raise
                # Someone changed the donor (another donation?) since we read it: judge again.
        self.metrics.count("DonationsRecorded")  # its transaction committed
        self._thank(recorded)
        return recorded

    def _record_once(self, identity: Identity, request: _DonationRequest) -> RecordedDonation:
        donor = self.donors.get(request.donor_id, consistent=True)
        if donor is None:
            raise NotFound(f"No donor with id {request.donor_id}")
        site = self._site(request.site_id or donor.site_id)
        at = request.collected_at
        if donor.last_donation_at is not None and donor.last_donation_at > at:
            raise BadUserInput.of(
                [FieldProblem("input.collectedAt", "a later donation of this donor is already recorded")]
            )
        rule_set = RULE_SETS[site.jurisdiction]
        facts = self._facts(donor, request.weight_kg)
        verdict = assess(rule_set, facts, at, request.donation_type, request.haemoglobin_g_dl)
        if not verdict.eligible:
            when = verdict.next_eligible_at.isoformat() if verdict.next_eligible_at else None
            raise NotEligible(
                f"The donor may not give {request.donation_type.label} now: {'; '.join(verdict.reasons)}",
                verdict.reasons,
                when,
            )
        year = at.astimezone(ZoneInfo(site.timezone)).year
        din = make_din(site.facility_code, year, self.sequences.next(site.facility_code, year))
        units = rules.make_units(
            din, donor.id, site.id, donor.blood_group, request.components, at, request.anticoagulant
        )
        donation = Donation(
            din=din,
            donor_id=donor.id,
            site_id=site.id,
            donation_type=request.donation_type,
            collected_at=at,
            recorded_by=identity.sub,
            unit_ids=tuple(u.id for u in units),
            anticoagulant=request.anticoagulant,
            haemoglobin=Lazy(request.haemoglobin_g_dl),
        )
        after = donor_rules.with_donation(donor, PastDonation(request.donation_type, at), self.clock())
        # When may they give this type again? The same rules, with this donation in the history.
        later = assess(rule_set, self._facts(after, request.weight_kg), at, request.donation_type)
        reminder = (
            Reminder(donor.id, din, request.donation_type, later.next_eligible_at)
            if later.next_eligible_at
            else None
        )
        self.donations.record(donation, units, after, donor, reminder)
        return RecordedDonation(donation, units, after)

    def _thank(self, recorded: RecordedDonation) -> None:
        """Best effort: the donation is recorded whatever happens to the message."""
        donation, donor = recorded.donation, recorded.donor
        try:
            self.notifications.notify(
                NotificationKind.DONATION_THANKS,
                contact_of(donor),
                donor.preferences,
                donation.din,
                {"donation_type": donation.donation_type.label, "site": self._site(donation.site_id).name},
            )
        except Exception as exc:
            log.warning("thank-you not sent", extra={"din": donation.din, "exception": type(exc).__name__})

    # --- deferrals ------------------------------------------------------------------------------
    def defer(self, identity: Identity, values: Mapping[str, object]) -> Donor:
        if not identity.is_staff:
            raise Forbidden("Only blood service staff can defer donors")
        donor_id = str(values["donor_id"])
        deferral = _deferral(values, identity.sub, self.clock(), self.new_id())
        for attempt in range(3):
            donor = self.donors.get(donor_id, consistent=True)
            if donor is None:
                raise NotFound(f"No donor with id {donor_id}")
            updated = donor_rules.with_deferral(donor, deferral, self.clock())
            try:
                self.donors.update(updated, donor)
                return updated
            except Conflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # --- "eligible again" reminders ------------------------------------------------------------
    def send_due_reminders(self, days_back: int = 2) -> int:
        """Notify donors whose interval has ended (today's reminders and a few missed days')."""
        now = self.clock()
        sent = 0
        for offset in range(days_back, -1, -1):
            for reminder in self.reminders.due((now - timedelta(days=offset)).date()):
                if reminder.due_at > now:
                    continue
                try:
                    told = self._remind(reminder, now)
                except Exception as exc:  # one donor's failure must not stop the others
                    # Kept: the next run (the schedule is hourly) tries this reminder again.
                    log.warning(
                        "reminder not sent", extra={"din": reminder.din, "exception": type(exc).__name__}
                    )
                    continue
                sent += told
                self.reminders.done(reminder)
        return sent

    def _remind(self, reminder: Reminder, now: datetime) -> bool:
        donor = self.donors.get(reminder.donor_id)
        if donor is None:
            return False
        site = self._site(donor.site_id, "siteId")
        # If they donated again since, the rules say no (or a newer reminder says the same thing).
        verdict = assess(RULE_SETS[site.jurisdiction], self._facts(donor), now, reminder.donation_type)
        if not verdict.eligible:
            return False
        sent = self.notifications.notify(
            NotificationKind.ELIGIBLE_AGAIN,
            contact_of(donor),
            donor.preferences,
            reminder.din,
            {
                "donation_type": reminder.donation_type.label,
                "site": site.name,
                "eligible_on": _as_read(reminder.due_at),
            },
        )
        return bool(sent)

    def notify_unit_issued(self, unit: BloodUnit) -> None:
        """Tell the donor their blood reached a hospital (called by inventory when a unit is issued)."""
        donor = self.donors.get(unit.donor_id)
        if donor is None:
            return
        self.notifications.notify(
            NotificationKind.BLOOD_ISSUED,
            contact_of(donor),
            donor.preferences,
            unit.id,
            {
                "component": unit.component.value.replace("_", " ").lower(),
                "donated_on": _as_read(unit.collected_at),
            },
        )


def _as_read(at: datetime) -> str:
    """A date as people write it in a message: 6 December 2026."""
    return f"{at.day} {at:%B %Y}"


@dataclass(frozen=True, slots=True)
class _DonationRequest:
    donor_id: str
    donation_type: DonationType
    haemoglobin_g_dl: float
    collected_at: datetime
    site_id: str | None
    weight_kg: float | None
    components: tuple[Component, ...]
    anticoagulant: Anticoagulant | None


def _validate(values: Mapping[str, object], now: datetime) -> _DonationRequest:
    problems: list[FieldProblem] = []
    donor_id = str(values.get("donor_id", ""))
    try:
        text.identifier("input.donorId", donor_id)
    except text.Invalid as bad:
        problems.append(bad.problem)
    donation_type = values.get("donation_type")
    if not isinstance(donation_type, DonationType):
        problems.append(FieldProblem("input.donationType", "is required"))
    haemoglobin = values.get("haemoglobin_g_dl")
    if not isinstance(haemoglobin, int | float) or not 3.0 <= float(haemoglobin) <= 25.0:
        problems.append(
            FieldProblem("input.haemoglobinGdl", "must be the measured haemoglobin in g/dL (3-25)")
        )
    weight = values.get("weight_kg")
    if weight is not None and (not isinstance(weight, int | float) or not 20 <= float(weight) <= 350):
        problems.append(FieldProblem("input.weightKg", "must be a weight in kilograms between 20 and 350"))
    collected_at = values.get("collected_at") or now
    assert isinstance(collected_at, datetime)
    if collected_at > now + CLOCK_SKEW:
        problems.append(FieldProblem("input.collectedAt", "must not be in the future"))
    elif collected_at < now - LATE_ENTRY:
        problems.append(FieldProblem("input.collectedAt", "must be within the last 72 hours"))
    site_id = values.get("site_id")
    if problems:
        raise BadUserInput.of(problems)
    assert isinstance(donation_type, DonationType)
    components_in = values.get("components")
    components = rules.check_components(donation_type, list(components_in) if components_in else None)  # type: ignore[call-overload]
    anticoagulant = values.get("anticoagulant")
    if Component.WHOLE_BLOOD in components:
        rules.shelf_life(
            Component.WHOLE_BLOOD, anticoagulant if isinstance(anticoagulant, Anticoagulant) else None
        )
    return _DonationRequest(
        donor_id=donor_id,
        donation_type=donation_type,
        haemoglobin_g_dl=float(haemoglobin),  # type: ignore[arg-type]
        collected_at=collected_at,
        site_id=str(site_id) if site_id else None,
        weight_kg=float(weight) if weight is not None else None,  # type: ignore[arg-type]
        components=components,
        anticoagulant=anticoagulant if isinstance(anticoagulant, Anticoagulant) else None,
    )


def _deferral(values: Mapping[str, object], by: str, now: datetime, deferral_id: str) -> Deferral:
    reason = values.get("reason")
    starts_on = values.get("starts_on") or now.date()
    ends_on = values.get("ends_on")
    permanent = bool(values.get("permanent"))
    problems: list[FieldProblem] = []
    if not isinstance(reason, DeferralReason):
        problems.append(FieldProblem("input.reason", "is required"))
    assert isinstance(starts_on, date)
    if permanent and ends_on is not None:
        problems.append(FieldProblem("input.endsOn", "must be left out for a permanent deferral"))
    if not permanent:
        if not isinstance(ends_on, date):
            problems.append(FieldProblem("input.endsOn", "is required unless the deferral is permanent"))
        elif ends_on <= starts_on:
            problems.append(FieldProblem("input.endsOn", "must be after startsOn"))
        elif (ends_on - starts_on).days > MAX_DEFERRAL_DAYS:
            problems.append(FieldProblem("input.endsOn", "must be within 10 years; use permanent instead"))
    note = values.get("note")
    if note is not None and len(str(note)) > 1000:
        problems.append(FieldProblem("input.note", "must be at most 1000 characters"))
    types = values.get("donation_types")
    if problems:
        raise BadUserInput.of(problems)
    return Deferral(
        id=deferral_id,
        reason=reason,  # type: ignore[arg-type]
        starts_on=starts_on,
        ends_on=None if permanent else ends_on,  # type: ignore[arg-type]
        recorded_by=by,
        recorded_at=now,
        donation_types=frozenset(types)
        if isinstance(types, list | tuple) and types
        else frozenset(DonationType),
        note=str(note).strip() if note else None,
    )
