"""GraphQL types of campaigns: the campaign, its audience, its stats and its recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from bloodbank.domain import campaigns as domain
from resolvers import campaigns as campaign_resolvers
from schema.calls import Ctx, call
from schema.enums import BloodGroup

CampaignStatus = strawberry.enum(
    domain.CampaignStatus,
    name="CampaignStatus",
    description=(
        "DRAFT until launched; SCHEDULED until sendAt; SENDING; PAUSED (by a person, or by itself: see"
        " pauseReason); SENT once every recipient was attempted; CANCELLED; EXPIRED when expiresAt"
        " passed first."
    ),
)
DeliveryStatus = strawberry.enum(
    domain.DeliveryStatus,
    name="DeliveryStatus",
    description=(
        "Where one recipient is: QUEUED (not sent yet), SENT (SES took it), DELIVERED, OPENED, CLICKED;"
        " BOUNCED, COMPLAINED, UNSUBSCRIBED; SUPPRESSED (skipped: the address is suppressed) or FAILED"
        " (SES rejected it, or it would not render)."
    ),
)
PauseReason = strawberry.enum(
    domain.PauseReason,
    name="CampaignPauseReason",
    description=(
        "BY_USER; BOUNCE_RATE or COMPLAINT_RATE (over 5 % bounces or 0.1 % complaints after 100 sends);"
        " DAILY_QUOTA (SES's 24-hour quota is spent)."
    ),
)


@strawberry.type(description="Donors as an audience.")
class CampaignSegment:
    blood_groups: list[BloodGroup]  # type: ignore[valid-type]
    site_id: strawberry.ID | None
    eligible_now: bool


@strawberry.type(
    description=(
        "Recipients of a campaign, by stage. queued: not sent yet; the others count recipients that"
        " reached that stage (one who clicked was also sent, delivered and opened)."
    )
)
class CampaignStats:
    recipients: int
    queued: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    opened: int
    clicked: int
    unsubscribed: int
    suppressed: int
    failed: int


@strawberry.type(description="A bulk e-mail campaign.")
class Campaign:
    id: strawberry.ID
    name: str
    template_id: strawberry.ID
    status: CampaignStatus  # type: ignore[valid-type]
    send_at: datetime | None = strawberry.field(description="When it starts sending; null: at launch.")
    expires_at: datetime | None = strawberry.field(
        description="Nothing is sent from then on (an appeal must not go out late)."
    )
    pause_reason: PauseReason | None  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None
    finished_at: datetime | None

    @strawberry.field(description="The recipient list it goes to, if its audience is a list.")
    def list_id(self) -> strawberry.ID | None:
        audience = self.audience  # type: ignore[attr-defined]
        return strawberry.ID(audience.list_id) if isinstance(audience, domain.ListAudience) else None

    @strawberry.field(description="The donors it goes to, if its audience is a segment.")
    def segment(self) -> CampaignSegment | None:
        audience = self.audience  # type: ignore[attr-defined]
        if not isinstance(audience, domain.SegmentAudience):
            return None
        groups = [BloodGroup(g) for g in sorted(audience.blood_groups)]
        site = strawberry.ID(audience.site_id) if audience.site_id else None
        return CampaignSegment(blood_groups=groups, site_id=site, eligible_now=audience.eligible_now)

    @strawberry.field(description="Counts of its recipients by stage (updated as SES reports).")
    def stats(self, info: Ctx) -> CampaignStats:
        return call(campaign_resolvers.campaign_stats, info, source=self)


@strawberry.type(description="One page of campaigns.")
class CampaignConnection:
    items: list[Campaign]
    next_token: str | None


@strawberry.type(description="One recipient of a campaign and what happened to their message.")
class CampaignRecipient:
    email: str
    status: DeliveryStatus  # type: ignore[valid-type]
    message_id: str | None = strawberry.field(description="SES's message id, once sent.")
    sent_at: datetime | None
    updated_at: datetime | None
    reason: str | None = strawberry.field(description="Why SUPPRESSED or FAILED (a code).")


@strawberry.type(description="One page of a campaign's recipients, in a stable order.")
class CampaignRecipientConnection:
    items: list[CampaignRecipient]
    next_token: str | None


@strawberry.input(description="Donors as an audience: all who agreed to e-mail appeals, narrowed down.")
class CampaignSegmentInput:
    blood_groups: list[BloodGroup] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only these groups; omit for every group."
    )
    site_id: strawberry.ID | None = strawberry.field(default=None, description="Only this home site.")
    eligible_now: bool = strawberry.field(default=False, description="Only donors who may give today.")


@strawberry.input(description="A new campaign: a template, and exactly one audience (listId or segment).")
class CreateCampaignInput:
    name: Annotated[str, strawberry.argument(description="1-100 characters.")]
    template_id: strawberry.ID
    list_id: strawberry.ID | None = None
    segment: CampaignSegmentInput | None = None
    send_at: datetime | None = strawberry.field(default=None, description="Up to 90 days ahead.")
    expires_at: datetime | None = strawberry.field(default=None, description="After sendAt.")
