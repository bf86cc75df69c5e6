"""GraphQL types of inventory: stock levels, hospital requests, a unit's ledger, and their inputs."""

from __future__ import annotations

from datetime import datetime

import strawberry

from bloodbank.domain import inventory
from resolvers import inventory as inventory_resolvers
from schema.calls import Ctx, call
from schema.donations import BloodUnit, UnitStatus
from schema.enums import BloodGroup, Component
from schema.types import Hospital, IDFilterInput

WastageReason = strawberry.enum(
    inventory.WastageReason, name="WastageReason", description="Why a unit left stock unused."
)
TestMarker = strawberry.enum(
    inventory.TestMarker,
    name="TestMarker",
    description="Mandatory screening: five common markers, plus WNV at US sites and HEV at UK sites.",
)
TestOutcome = strawberry.enum(inventory.TestOutcome, name="TestOutcome")
StockStatus = strawberry.enum(
    inventory.StockStatus,
    name="StockStatus",
    description=(
        "GREEN enough; AMBER under amberDays of supply or below the par level;"
        " RED under redDays, or none left where a par level is set."
    ),
)
Urgency = strawberry.enum(inventory.Urgency, name="Urgency")
RequestStatus = strawberry.enum(
    inventory.RequestStatus,
    name="RequestStatus",
    description=(
        "PENDING nothing allocated yet; PARTIALLY_FULFILLED some units reserved, the rest outstanding;"
        " FULFILLED every unit reserved (or issued); CANCELLED."
    ),
)


@strawberry.type(description="One change of a unit, as the immutable ledger recorded it.")
class UnitLedgerEntry:
    version: int = strawberry.field(description="The unit's version after the change.")
    at: datetime
    by: strawberry.ID = strawberry.field(description="The user, or system:<job>.")
    from_status: UnitStatus  # type: ignore[valid-type]
    to_status: UnitStatus  # type: ignore[valid-type]
    why: str
    site_id: strawberry.ID
    to_site_id: strawberry.ID | None = strawberry.field(description="Set by transfers.")
    request_id: strawberry.ID | None
    wastage: WastageReason | None  # type: ignore[valid-type]


@strawberry.type(description="One page of units.")
class BloodUnitConnection:
    items: list[BloodUnit]
    next_token: str | None


@strawberry.type(
    description=(
        "Stock of one site, blood group and component: counters moved in the same transaction as"
        " the units, so they always equal the units on the shelves."
    )
)
class StockLevel:
    site_id: strawberry.ID
    blood_group: BloodGroup  # type: ignore[valid-type]
    component: Component  # type: ignore[valid-type]
    available: int
    reserved: int = strawberry.field(description="Allocated to hospital requests, not yet issued.")
    days_of_supply: float | None = strawberry.field(
        description="available divided by the issues per day over the window; null when none were issued."
    )
    status: StockStatus  # type: ignore[valid-type]
    issued_in_window: int = strawberry.field(description="Units issued over the trailing window.")
    wasted_in_window: int = strawberry.field(
        description="Units discarded or expired over the same window (typed units; the ledger says why)."
    )

    @strawberry.field(description="The par level: units the site wants on the shelf (0: none set).")
    def threshold(self) -> int:
        return self.threshold.par_level

    @strawberry.field(description="AMBER below this many days of supply.")
    def amber_days(self) -> float:
        return self.threshold.amber_days

    @strawberry.field(description="RED below this many days of supply.")
    def red_days(self) -> float:
        return self.threshold.red_days

    @strawberry.field(description="Days over which the issue rate is measured.")
    def window_days(self) -> int:
        return self.threshold.window_days

    @strawberry.field(description="Units issued per day, on average over the window.")
    def issued_per_day(self) -> float:
        return round(self.issue_rate_per_day, 2)  # type: ignore[attr-defined]


@strawberry.type(description="A hospital's order for blood, and the units allocated to it.")
class BloodRequest:
    id: strawberry.ID
    hospital_id: strawberry.ID
    site_id: strawberry.ID = strawberry.field(description="The site that supplies it.")
    blood_group: BloodGroup = strawberry.field(description="The patient's blood group.")  # type: ignore[valid-type]
    component: Component  # type: ignore[valid-type]
    quantity: int
    urgency: Urgency  # type: ignore[valid-type]
    needed_by: datetime
    status: RequestStatus  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime
    version: int
    cancel_reason: str | None

    @strawberry.field(description="Units allocated (reserved or issued).")
    def allocated(self) -> int:
        return len(self.unit_ids)  # type: ignore[attr-defined]

    @strawberry.field(description="Units still to allocate.")
    def outstanding(self) -> int:
        return self.outstanding

    @strawberry.field(description="The hospital that placed it.")
    def hospital(self, info: Ctx) -> Hospital | None:
        return call(inventory_resolvers.request_hospital, info, source=self)

    @strawberry.field(description="The allocated units with their current status (no donor data).")
    async def units(self, info: Ctx) -> list[BloodUnit]:
        return await call(inventory_resolvers.request_units, info, source=self)


@strawberry.type(description="One page of blood requests.")
class BloodRequestConnection:
    items: list[BloodRequest]
    next_token: str | None


# --- inputs ---------------------------------------------------------------------------------------
RETRY_HELP = (
    "Optional idempotency key (a UUID): a retried mutation with the same token has one effect and"
    " returns the same result; the same token with other arguments is CONFLICT. Kept 7 days."
)


@strawberry.input(description="Conditions on a time.")
class DateTimeFilterInput:
    lt: datetime | None = strawberry.UNSET


@strawberry.input(
    description="Filter units: by siteId (units in stock there, first to expire first) or by din."
)
class UnitFilterInput:
    site_id: IDFilterInput | None = strawberry.UNSET
    din: IDFilterInput | None = strawberry.UNSET
    expires_at: DateTimeFilterInput | None = strawberry.UNSET


@strawberry.input(description="Conditions on a request status.")
class RequestStatusFilterInput:
    eq: RequestStatus | None = strawberry.UNSET  # type: ignore[valid-type]


@strawberry.input(description="Filter blood requests. Hospitals always see only their own.")
class BloodRequestFilterInput:
    hospital_id: IDFilterInput | None = strawberry.UNSET
    status: RequestStatusFilterInput | None = strawberry.UNSET


@strawberry.input(description="One screening result.")
class TestResultInput:
    __test__ = False

    marker: TestMarker  # type: ignore[valid-type]
    outcome: TestOutcome  # type: ignore[valid-type]


@strawberry.input(
    description=(
        "Results for one donation (all its units). Results add up over several calls and are never"
        " overwritten. Every required marker negative and the group typed: QUARANTINED units become"
        " AVAILABLE. Any REACTIVE or INDETERMINATE result discards every unit of the donation on the shelves."
    )
)
class RecordTestResultsInput:
    din: strawberry.ID
    results: list[TestResultInput]
    blood_group: BloodGroup | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="The lab's ABO/RhD typing; needed before release."
    )
    client_request_token: str | None = strawberry.field(default=strawberry.UNSET, description=RETRY_HELP)


@strawberry.input(description="Take a unit out of stock as waste.")
class DiscardUnitInput:
    unit_id: strawberry.ID
    reason: WastageReason  # type: ignore[valid-type]
    note: str | None = strawberry.UNSET
    client_request_token: str | None = strawberry.field(default=strawberry.UNSET, description=RETRY_HELP)


@strawberry.input(description="Move AVAILABLE units to another site (at most 40: split larger transfers).")
class TransferUnitsInput:
    unit_ids: list[strawberry.ID]
    to_site_id: strawberry.ID
    client_request_token: str | None = strawberry.field(default=strawberry.UNSET, description=RETRY_HELP)


@strawberry.input(description="Par level and days-of-supply limits of one stock level (admins).")
class SetStockThresholdInput:
    site_id: strawberry.ID
    blood_group: BloodGroup  # type: ignore[valid-type]
    component: Component  # type: ignore[valid-type]
    par_level: int = strawberry.field(description="Units wanted on the shelf; below it the level is AMBER.")
    amber_days: float | None = strawberry.field(default=strawberry.UNSET, description="Default 2.")
    red_days: float | None = strawberry.field(default=strawberry.UNSET, description="Default 1.")
    window_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="Trailing days of issues behind daysOfSupply: 1-28, default 7."
    )


@strawberry.input(description="Order blood. A hospital orders for itself; staff name the hospital.")
class CreateBloodRequestInput:
    blood_group: BloodGroup = strawberry.field(description="The patient's blood group.")  # type: ignore[valid-type]
    component: Component  # type: ignore[valid-type]
    quantity: int = strawberry.field(description="1-40 units; place larger orders as several requests.")
    urgency: Urgency | None = strawberry.field(default=strawberry.UNSET, description="Default ROUTINE.")  # type: ignore[valid-type]
    needed_by: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="Default now; up to 90 days ahead."
    )
    hospital_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Required for staff; a hospital user may leave it out."
    )
    client_request_token: str | None = strawberry.field(default=strawberry.UNSET, description=RETRY_HELP)


@strawberry.input(description="An issued unit came back unused.")
class ReturnUnitInput:
    unit_id: strawberry.ID
    minutes_out_of_storage: int = strawberry.field(
        description="Minutes out of controlled storage: over 30 (60 for platelets) it is discarded."
    )
    client_request_token: str | None = strawberry.field(default=strawberry.UNSET, description=RETRY_HELP)


@strawberry.input(description="The hospital transfused an issued unit.")
class ConfirmTransfusionInput:
    unit_id: strawberry.ID
    client_request_token: str | None = strawberry.field(default=strawberry.UNSET, description=RETRY_HELP)
