"""The root types and the schema object, with its limits and caches."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.scalars import JSON
from strawberry.types.execution import ExecutionContext

from bloodbank.domain.identity import Group
from resolvers import directory as directory_resolvers
from resolvers import documents as document_resolvers
from resolvers import donations as donation_resolvers
from resolvers import donors as donor_resolvers
from schema.auth import EVERYONE, STAFF, allow
from schema.calls import Ctx, call
from schema.documents import RequestDonorDocumentUploadInput
from schema.donations import DeferDonorInput, Donation, RecordDonationInput
from schema.errors import ErrorPolicy
from schema.fast_paths import name_enum_values_directly, read_plain_fields_directly
from schema.scalars import AWSJSON, AWSDate, AWSDateTime
from schema.types import (
    Donor,
    DonorConnection,
    DonorFilterInput,
    Hospital,
    RegisterDonorInput,
    Site,
    UpdateDonorInput,
)
from schema.uploads import UploadTicket

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000


@strawberry.type
class Query:
    @strawberry.field(
        description="The signed-in donor's own record; null until they register.",
        extensions=[allow(Group.DONORS)],
    )
    def me(self, info: Ctx) -> Donor | None:
        return call(donor_resolvers.me, info)

    @strawberry.field(
        description="A donor by id. Staff see every donor; a donor only themself.",
        extensions=[allow(*STAFF, Group.DONORS)],
    )
    def get_donor(self, info: Ctx, id: strawberry.ID) -> Donor | None:
        return call(donor_resolvers.get_donor, info, id=id)

    @strawberry.field(
        description="Donors ordered by family name, filtered, one page at a time (staff only).",
        extensions=[allow(*STAFF)],
    )
    def list_donors(
        self,
        info: Ctx,
        filter: DonorFilterInput | None = None,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> DonorConnection:
        return call(donor_resolvers.list_donors, info, filter=filter, limit=limit, next_token=next_token)

    @strawberry.field(
        description="The service's collection and processing sites.", extensions=[allow(*EVERYONE)]
    )
    def list_sites(self, info: Ctx) -> list[Site]:
        return call(directory_resolvers.list_sites, info)

    @strawberry.field(description="Hospitals the service supplies.", extensions=[allow(*EVERYONE)])
    def list_hospitals(self, info: Ctx) -> list[Hospital]:
        return call(directory_resolvers.list_hospitals, info)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description=(
            "Register a donor. Staff register walk-in donors; a signed-in donor registers themself"
            " (their record's id is their user id). An e-mail address belongs to one donor only."
        ),
        extensions=[allow(*STAFF, Group.DONORS)],
    )
    def register_donor(self, info: Ctx, input: RegisterDonorInput) -> Donor:
        return call(donor_resolvers.register_donor, info, input=input)

    @strawberry.mutation(
        description="Change a donor (staff, or the donor themself). Stale expectedVersion gives CONFLICT.",
        extensions=[allow(*STAFF, Group.DONORS)],
    )
    def update_donor(self, info: Ctx, input: UpdateDonorInput) -> Donor:
        return call(donor_resolvers.update_donor, info, input=input)

    @strawberry.mutation(
        description=(
            "A form to upload one of a donor's documents (PDF, JPEG or PNG, up to 10 MiB) straight to"
            " storage, valid 15 minutes: a new document, or a new version of input.documentId. Staff,"
            " or the donor themself."
        ),
        extensions=[allow(*STAFF, Group.DONORS)],
    )
    def request_donor_document_upload(
        self, info: Ctx, input: RequestDonorDocumentUploadInput
    ) -> UploadTicket:
        return call(document_resolvers.request_donor_document_upload, info, input=input)

    @strawberry.mutation(
        description=(
            "Record a donation as it is collected (staff). The donor's eligibility is checked at that"
            " moment: an ineligible donor is refused with the reasons (errorType DonorNotEligible) and"
            " nothing is written. Creates the donation and its QUARANTINED units, labelled with a new"
            " ISBT 128 DIN, in one transaction."
        ),
        extensions=[allow(*STAFF)],
    )
    def record_donation(self, info: Ctx, input: RecordDonationInput) -> Donation:
        return call(donation_resolvers.record_donation, info, input=input)

    @strawberry.mutation(
        description="Defer a donor for a period or permanently (staff); returns the donor.",
        extensions=[allow(*STAFF)],
    )
    def defer_donor(self, info: Ctx, input: DeferDonorInput) -> Donor:
        return call(donation_resolvers.defer_donor, info, input=input)


# Built once: validation rules must be the same objects on every request for the cache to hit.
_LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


class BloodBankSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by ErrorPolicy, without personal data; strawberry's default logs everything."""


schema = BloodBankSchema(
    query=Query,
    mutation=Mutation,
    scalar_overrides={datetime: AWSDateTime, date: AWSDate, JSON: AWSJSON},
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(list(_LIMIT_RULES)),
        ParserCache,
        ValidationCache,
        ErrorPolicy,
    ],
)
read_plain_fields_directly(schema)
name_enum_values_directly(schema)
