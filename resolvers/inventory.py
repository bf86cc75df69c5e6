"""Resolvers of inventory: units, stock levels, hospital requests and the changes staff make."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from bloodbank.domain.donations import BloodUnit
from bloodbank.domain.inventory import BloodRequest, LedgerEntry, StockLevel
from bloodbank.domain.organisations import Hospital
from bloodbank.errors import BadUserInput, FieldProblem
from bloodbank.ports import Page
from resolvers.context import ResolverEvent
from resolvers.filters import operand


def _units_loader(event: ResolverEvent) -> DataLoader[str, BloodUnit | None]:
    service = event.services.inventory
    return event.loader("inventory-units", lambda ids: service.units_by_id(ids))


# --- units ----------------------------------------------------------------------------------------
def get_unit(event: ResolverEvent) -> BloodUnit | None:
    return event.services.inventory.get_unit(event.caller, event.arguments["din"])


def list_units(event: ResolverEvent) -> Page[BloodUnit]:
    args = event.arguments
    f = args.get("filter")
    if f:
        for name in f:
            if name not in ("site_id", "din", "expires_at"):
                raise BadUserInput.of([FieldProblem(f"filter.{name}", "is not supported")])
    return event.services.inventory.list_units(
        event.caller,
        operand(f, "site_id", "filter"),
        operand(f, "din", "filter"),
        operand(f, "expires_at", "filter", ("lt",)),
        args.get("limit"),
        args.get("next_token"),
    )


def unit_history(event: ResolverEvent) -> list[LedgerEntry]:
    return event.services.inventory.history(event.caller, event.source)


def record_test_results(event: ResolverEvent) -> list[BloodUnit]:
    return event.services.inventory.record_test_results(event.caller, dict(event.arguments["input"]))


def discard_unit(event: ResolverEvent) -> BloodUnit:
    return event.services.inventory.discard(event.caller, dict(event.arguments["input"]))


def transfer_units(event: ResolverEvent) -> list[BloodUnit]:
    return event.services.inventory.transfer(event.caller, dict(event.arguments["input"]))


def return_unit(event: ResolverEvent) -> BloodUnit:
    return event.services.inventory.return_unit(event.caller, dict(event.arguments["input"]))


def confirm_transfusion(event: ResolverEvent) -> BloodUnit:
    return event.services.inventory.confirm_transfusion(event.caller, dict(event.arguments["input"]))


# --- stock ----------------------------------------------------------------------------------------
def stock_levels(event: ResolverEvent) -> list[StockLevel]:
    args = event.arguments
    return event.services.inventory.stock_levels(
        event.caller, args.get("site_id"), args.get("blood_group"), args.get("component")
    )


def set_stock_threshold(event: ResolverEvent) -> StockLevel:
    return event.services.inventory.set_threshold(event.caller, dict(event.arguments["input"]))


# --- requests -------------------------------------------------------------------------------------
def create_blood_request(event: ResolverEvent) -> BloodRequest:
    return event.services.inventory.create_request(event.caller, dict(event.arguments["input"]))


def get_blood_request(event: ResolverEvent) -> BloodRequest | None:
    return event.services.inventory.get_request(event.caller, event.arguments["id"])


def list_blood_requests(event: ResolverEvent) -> Page[BloodRequest]:
    args = event.arguments
    f = args.get("filter")
    return event.services.inventory.list_requests(
        event.caller,
        operand(f, "hospital_id", "filter"),
        operand(f, "status", "filter"),
        args.get("limit"),
        args.get("next_token"),
    )


def fulfill_blood_request(event: ResolverEvent) -> BloodRequest:
    args = event.arguments
    request, reserved = event.services.inventory.allocate(
        event.caller, args["id"], args.get("client_request_token")
    )
    _units_loader(event).prime_many({u.id: u for u in reserved})  # just written: no read back
    return request


def issue_blood_request(event: ResolverEvent) -> BloodRequest:
    args = event.arguments
    return event.services.inventory.issue(event.caller, args["id"], args.get("client_request_token"))


def cancel_blood_request(event: ResolverEvent) -> BloodRequest:
    args = event.arguments
    return event.services.inventory.cancel(
        event.caller, args["id"], args.get("reason"), args.get("client_request_token")
    )


def request_hospital(event: ResolverEvent) -> Hospital | None:
    request: BloodRequest = event.source
    return event.services.inventory.hospital(request.hospital_id)


async def request_units(event: ResolverEvent) -> list[BloodUnit]:
    """Batched: the units of every request on a page come from one BatchGetItem."""
    request: BloodRequest = event.source
    found = await _units_loader(event).load_many(list(request.unit_ids))
    return [u for u in found if u is not None]
