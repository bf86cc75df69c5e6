"""Donor appeals on a shortage: ask the donors who can help, at most once per period, until it ends.

``AppealService.appeal(alert)`` runs when an AMBER or RED alert is published (the alerts topic feeds
the appeals Lambda). For each donor group that can replenish the component (``domain.appeals``), it
reads the site's donors of that group a page at a time (the donor index ``gsi1``, one Query per
page: ``DonorRepository.list`` with site and group pinned) and, for each donor:

1. skips those not opted in to appeals (consent, the APPEAL kind, a channel they can be reached on),
   and those not eligible for a donation type that makes the component now or within the window;
2. claims the donor's appeal record (``AppealLedger.claim``): refused when another alert appealed to
   them within the period. A retried run of the same alert gets the claim again, and the send-once
   notification ledger (keyed by the alert id) then skips the messages already sent;
3. sends through ``NotificationService.notify`` one channel at a time, so that it knows whether
   anything went out; when nothing could be sent, the claim is released for a later run.

Before each page it re-reads what the level announces and stops once the level is GREEN again or a
newer alert of the level superseded this one (that alert's own appeal takes over; donors this one
reached stay claimed for the period). It also stops while ``remaining_seconds()`` (the Lambda's
remaining time) still leaves ``reserve_seconds``, and reports where to resume.

Logs carry donor ids, the alert id and counts only: never a name, a phone number or an address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from bloodbank.domain.alerts import ShortageAlert
from bloodbank.domain.appeals import (
    DEFAULT_APPEAL_PERIOD,
    DEFAULT_APPEAL_WINDOW,
    StopReason,
    appeal_groups,
    donation_type_within,
    facts_of,
    opted_in,
    why_stop,
)
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.donors import Donor
from bloodbank.domain.eligibility import RULE_SETS
from bloodbank.domain.filters import AllOf, Cond
from bloodbank.domain.inventory import LevelKey
from bloodbank.domain.notifications import Channel, Contact, Fact, NotificationKind, compose
from bloodbank.domain.organisations import Site
from bloodbank.ports import AnnouncedLevels, AppealLedger, Clock, DirectoryRepository, DonorRepository
from bloodbank.services.donations import Notifications, contact_of

log = logging.getLogger("bloodbank.appeals")

DEFAULT_PAGE_SIZE = 100
DEFAULT_RESERVE_SECONDS = 10.0  # stop while this much of the Lambda's time is left


@dataclass(frozen=True, slots=True)
class AppealPosition:
    """Where an appeal stopped: the donor group, and the page token of that group (None: its first)."""

    group: BloodGroup
    next_token: str | None = None


@dataclass
class AppealReport:
    """What one run did. Every donor read is ``considered`` and lands in exactly one other count."""

    alert_id: str
    considered: int = 0
    skipped_incompatible: int = 0  # not of a compatible group or not of the site (index lag)
    skipped_not_opted_in: int = 0  # no consent, appeals turned off, or no reachable channel
    skipped_ineligible: int = 0  # may not donate a type making the component within the window
    skipped_recently_appealed: int = 0  # another alert appealed to them within the period
    sent: int = 0  # donors sent at least one message by this run
    already_sent: int = 0  # a retried run: every message was sent by an earlier run of this alert
    failed: int = 0  # nothing could be sent (the claim is released) or the record could not be read
    pages: int = 0  # donor pages read (one Query each)
    stopped_because: StopReason = StopReason.COMPLETED
    resume_at: AppealPosition | None = None  # set when stopped for the deadline

    def counts(self) -> dict[str, object]:
        """What may be logged: counts and identifiers, nothing about any donor."""
        return {
            "alert": self.alert_id,
            "considered": self.considered,
            "skipped_incompatible": self.skipped_incompatible,
            "skipped_not_opted_in": self.skipped_not_opted_in,
            "skipped_ineligible": self.skipped_ineligible,
            "skipped_recently_appealed": self.skipped_recently_appealed,
            "sent": self.sent,
            "already_sent": self.already_sent,
            "failed": self.failed,
            "pages": self.pages,
            "stopped_because": self.stopped_because.value,
            "resume_group": self.resume_at.group.value if self.resume_at else None,
        }


RemainingSeconds = Callable[[], float]


@dataclass
class AppealService:
    donors: DonorRepository
    directory: DirectoryRepository
    ledger: AppealLedger
    levels: AnnouncedLevels
    notifications: Notifications
    clock: Clock
    window: timedelta = DEFAULT_APPEAL_WINDOW  # eligible now or within this long
    period: timedelta = DEFAULT_APPEAL_PERIOD  # at most one appeal per donor in any such period
    page_size: int = DEFAULT_PAGE_SIZE
    reserve_seconds: float = DEFAULT_RESERVE_SECONDS

    def appeal(
        self,
        alert: ShortageAlert,
        remaining_seconds: RemainingSeconds | None = None,
        start: AppealPosition | None = None,
    ) -> AppealReport:
        """Appeal to the donors who can help with ``alert``'s shortage; ``start`` resumes a run that
        stopped for its deadline (``AppealReport.resume_at``). Donor reads and level reads that fail
        raise (a retried run resumes safely); one donor's failure is counted and the others go on."""
        report = AppealReport(alert.id)
        if not alert.is_shortage:
            return self._stop(report, StopReason.NOT_A_SHORTAGE)
        site = next((s for s in self.directory.sites() if s.id == alert.site_id), None)
        if site is None:
            log.error("appeal for an unknown site", extra={"alert": alert.id, "site_id": alert.site_id})
            return self._stop(report, StopReason.UNKNOWN_SITE)
        groups = appeal_groups(alert.component, alert.blood_group)
        first, token = 0, None
        if start is not None:
            if start.group not in groups:
                raise ValueError(f"{start.group.value} donors are not asked for this alert")
            first, token = groups.index(start.group), start.next_token
        level = LevelKey(alert.site_id, alert.blood_group, alert.component)
        for group in groups[first:]:
            while True:
                if self._out_of_time(remaining_seconds):
                    return self._stop(report, StopReason.DEADLINE, AppealPosition(group, token))
                reason = why_stop(alert, self.levels.announced(level))
                if reason is not None:
                    return self._stop(report, reason)
                where = AllOf((Cond("site_id", "eq", alert.site_id), Cond("blood_group", "eq", group)))
                page = self.donors.list(where, self.page_size, token)
                report.pages += 1
                for donor in page.items:
                    if self._out_of_time(remaining_seconds):
                        return self._stop(report, StopReason.DEADLINE, AppealPosition(group, token))
                    self._consider(alert, site, groups, donor, report)
                token = page.next_token
                if token is None:
                    break
        return self._stop(report, StopReason.COMPLETED)

    # --- one donor ------------------------------------------------------------------------------
    def _consider(
        self,
        alert: ShortageAlert,
        site: Site,
        groups: Sequence[BloodGroup],
        donor: Donor,
        report: AppealReport,
    ) -> None:
        report.considered += 1
        if donor.site_id != alert.site_id or donor.blood_group not in groups:
            report.skipped_incompatible += 1
            return
        if not opted_in(donor.preferences):
            report.skipped_not_opted_in += 1
            return
        try:
            now = self.clock()
            donation_type = donation_type_within(
                RULE_SETS[site.jurisdiction], facts_of(donor), now, alert.component, self.window
            )
            if donation_type is None:
                report.skipped_ineligible += 1
                return
            facts = {Fact.SITE.value: site.name, Fact.DONATION_TYPE.value: donation_type.label}
            contact = contact_of(donor)
            channels = [
                m.channel
                for m in compose(NotificationKind.APPEAL, contact, donor.preferences, alert.id, facts)
            ]
            if not channels:  # e.g. SMS only, and no usable phone number
                report.skipped_not_opted_in += 1
                return
            if not self.ledger.claim(donor.id, alert.id, now, self.period):
                report.skipped_recently_appealed += 1
                return
        except Exception as exc:  # the record could not be decrypted, or the claim not written
            report.failed += 1
            log.warning(
                "donor not considered for the appeal",
                extra={"alert": alert.id, "donor_id": donor.id, "exception": type(exc).__name__},
            )
            return
        self._send(alert, donor, contact, channels, facts, report)

    def _send(
        self,
        alert: ShortageAlert,
        donor: Donor,
        contact: Contact,
        channels: Sequence[Channel],
        facts: dict[str, str],
        report: AppealReport,
    ) -> None:
        """One ``notify`` per channel, so a partial failure is told apart from no send at all."""
        sent_now = sent_before = False
        for channel in channels:
            only = replace(donor.preferences, channels=frozenset({channel}))
            try:
                sent = self.notifications.notify(NotificationKind.APPEAL, contact, only, alert.id, facts)
            except Exception as exc:
                log.warning(
                    "appeal not sent",
                    extra={
                        "alert": alert.id,
                        "donor_id": donor.id,
                        "channel": channel.value,
                        "exception": type(exc).__name__,
                    },
                )
                continue
            if sent:
                sent_now = True
            else:
                sent_before = True  # the ledger says an earlier run of this alert sent it
        if sent_now:
            report.sent += 1
            log.info("appeal sent", extra={"alert": alert.id, "donor_id": donor.id})
        elif sent_before:
            report.already_sent += 1
        else:
            report.failed += 1
            self._release(alert, donor)

    def _release(self, alert: ShortageAlert, donor: Donor) -> None:
        try:
            self.ledger.release(donor.id, alert.id)
        except Exception as exc:
            # The claim stays: this donor is not asked again within the period (never twice, at worst never).
            log.error(
                "appeal claim not released",
                extra={"alert": alert.id, "donor_id": donor.id, "exception": type(exc).__name__},
            )

    # --- stopping -------------------------------------------------------------------------------
    def _out_of_time(self, remaining_seconds: RemainingSeconds | None) -> bool:
        return remaining_seconds is not None and remaining_seconds() < self.reserve_seconds

    def _stop(
        self, report: AppealReport, reason: StopReason, resume_at: AppealPosition | None = None
    ) -> AppealReport:
        report.stopped_because = reason
        report.resume_at = resume_at
        log.info("appeal stopped", extra=report.counts())
        return report
