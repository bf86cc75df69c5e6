"""The root types and the schema object, with its limits and caches."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import date, datetime
from typing import Annotated, Any

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
from strawberry.types.graphql import OperationType

from bloodbank.domain.identity import Group
from resolvers import alerts as alert_resolvers
from resolvers import audit as audit_resolvers
from resolvers import campaigns as campaign_resolvers
from resolvers import directory as directory_resolvers
from resolvers import documents as document_resolvers
from resolvers import donations as donation_resolvers
from resolvers import donors as donor_resolvers
from resolvers import email as email_resolvers
from resolvers import employees as employee_resolvers
from resolvers import inventory as inventory_resolvers
from schema.alerts import ShortageAlert, ShortageAlertConnection
from schema.audit import AuditEventConnection, AuditEventFilterInput
from schema.auth import EVERYONE, STAFF, allow
from schema.calls import Ctx, call
from schema.campaigns import (
    Campaign,
    CampaignConnection,
    CampaignRecipientConnection,
    CampaignStatus,
    CreateCampaignInput,
    DeliveryStatus,
)
from schema.documents import RequestDonorDocumentUploadInput
from schema.donations import BloodUnit, DeferDonorInput, Donation, RecordDonationInput
from schema.email import (
    CreateEmailTemplateInput,
    CreateRecipientListInput,
    EmailTemplate,
    EmailTemplateConnection,
    RecipientList,
    RecipientListConnection,
    RenderedEmail,
)
from schema.employees import (
    CreateEmployeeProfileInput,
    Employee,
    EmployeeConnection,
    EmployeeStatus,
    UpdateEmployeeProfileInput,
)
from schema.enums import BloodGroup, Component
from schema.errors import ErrorPolicy, public_error
from schema.fast_paths import name_enum_values_directly, read_plain_fields_directly
from schema.inventory import (
    BloodRequest,
    BloodRequestConnection,
    BloodRequestFilterInput,
    BloodUnitConnection,
    ConfirmTransfusionInput,
    CreateBloodRequestInput,
    DiscardUnitInput,
    RecordTestResultsInput,
    ReturnUnitInput,
    SetStockThresholdInput,
    StockLevel,
    TransferUnitsInput,
    UnitFilterInput,
)
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

    # --- inventory --------------------------------------------------------------------------------
    @strawberry.field(
        description=(
            "A unit by its label: the DIN with its product code (G151726000001X-RC). A bare DIN works"
            " when the donation made one unit. Staff only."
        ),
        extensions=[allow(*STAFF)],
    )
    def get_unit(self, info: Ctx, din: strawberry.ID) -> BloodUnit | None:
        return call(inventory_resolvers.get_unit, info, din=din)

    @strawberry.field(
        description=(
            "Units in stock at a site (filter.siteId.eq), first to expire first, optionally expiring"
            " before filter.expiresAt.lt; or every unit of one donation (filter.din.eq: all of them in one"
            " page). Staff only."
        ),
        extensions=[allow(*STAFF)],
    )
    def list_units(
        self,
        info: Ctx,
        filter: UnitFilterInput | None = None,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> BloodUnitConnection:
        return call(inventory_resolvers.list_units, info, filter=filter, limit=limit, next_token=next_token)

    @strawberry.field(
        description=(
            "Stock per site x blood group x component (every combination asked for, zero where none),"
            " with days of supply and GREEN/AMBER/RED. Hospitals see it too: aggregates only."
        ),
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def stock_levels(
        self,
        info: Ctx,
        site_id: strawberry.ID | None = None,
        blood_group: BloodGroup | None = None,  # type: ignore[valid-type]
        component: Component | None = None,  # type: ignore[valid-type]
    ) -> list[StockLevel]:
        return call(
            inventory_resolvers.stock_levels,
            info,
            site_id=site_id,
            blood_group=blood_group,
            component=component,
        )

    @strawberry.field(
        description="A blood request. A hospital sees only its own: another's is null.",
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def get_blood_request(self, info: Ctx, id: strawberry.ID) -> BloodRequest | None:
        return call(inventory_resolvers.get_blood_request, info, id=id)

    @strawberry.field(
        description=(
            "Blood requests: a hospital's own, newest first; for staff, by hospital, by status (soonest"
            " needed first: the work list), or all, newest first."
        ),
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def list_blood_requests(
        self,
        info: Ctx,
        filter: BloodRequestFilterInput | None = None,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> BloodRequestConnection:
        return call(
            inventory_resolvers.list_blood_requests, info, filter=filter, limit=limit, next_token=next_token
        )

    @strawberry.field(
        description="Shortage alerts, newest first, of one site or of every site (staff and hospitals).",
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def list_shortage_alerts(
        self,
        info: Ctx,
        site_id: strawberry.ID | None = None,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> ShortageAlertConnection:
        return call(
            alert_resolvers.list_shortage_alerts, info, site_id=site_id, limit=limit, next_token=next_token
        )

    @strawberry.field(
        description="The service's collection and processing sites.", extensions=[allow(*EVERYONE)]
    )
    def list_sites(self, info: Ctx) -> list[Site]:
        return call(directory_resolvers.list_sites, info)

    @strawberry.field(description="Hospitals the service supplies.", extensions=[allow(*EVERYONE)])
    def list_hospitals(self, info: Ctx) -> list[Hospital]:
        return call(directory_resolvers.list_hospitals, info)

    # --- employees --------------------------------------------------------------------------------
    @strawberry.field(
        description="The signed-in employee's own profile; null until they create it.",
        extensions=[allow(*STAFF)],
    )
    def my_employee_profile(self, info: Ctx) -> Employee | None:
        return call(employee_resolvers.my_employee_profile, info)

    @strawberry.field(
        description=(
            "An employee's profile by id (their user id). Staff see ACTIVE colleagues and themselves;"
            " admins every profile. Null otherwise."
        ),
        extensions=[allow(*STAFF)],
    )
    def get_employee(self, info: Ctx, id: strawberry.ID) -> Employee | None:
        return call(employee_resolvers.get_employee, info, id=id)

    @strawberry.field(
        description=(
            "Employees whose name starts with query (family name first: 'okafor a' finds Ada Okafor;"
            " any case, accents ignored), of one department if given, in name order. Staff find"
            " ACTIVE colleagues; admins any status, or the one given."
        ),
        extensions=[allow(*STAFF)],
    )
    def search_employees(
        self,
        info: Ctx,
        query: str | None = None,
        department: str | None = None,
        status: EmployeeStatus | None = None,  # type: ignore[valid-type]
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> EmployeeConnection:
        return call(
            employee_resolvers.search_employees,
            info,
            query=query,
            department=department,
            status=status,
            limit=limit,
            next_token=next_token,
        )

    # --- campaigns: templates and recipient lists ---------------------------------------------------
    @strawberry.field(
        description="An e-mail template by id (staff); null if there is none.", extensions=[allow(*STAFF)]
    )
    def get_email_template(self, info: Ctx, id: strawberry.ID) -> EmailTemplate | None:
        return call(email_resolvers.get_email_template, info, id=id)

    @strawberry.field(description="E-mail templates, newest first (staff).", extensions=[allow(*STAFF)])
    def list_email_templates(
        self,
        info: Ctx,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> EmailTemplateConnection:
        return call(email_resolvers.list_email_templates, info, limit=limit, next_token=next_token)

    @strawberry.field(
        description=(
            "Render a template exactly as a recipient with these values would receive it (staff)."
            " data is a JSON object of variable names to values (AWSJSON: a string holding JSON, e.g."
            ' "{\\"first_name\\":\\"Ada\\"}"); email is a variable too, and unsubscribe_url is a'
            " placeholder here (each send makes the recipient's own). A variable without a value is"
            " BAD_USER_INPUT naming it."
        ),
        extensions=[allow(*STAFF)],
    )
    def preview_email(self, info: Ctx, template_id: strawberry.ID, data: JSON | None = None) -> RenderedEmail:
        return call(email_resolvers.preview_email, info, template_id=template_id, data=data)

    @strawberry.field(
        description="A recipient list by id, with its import's status and counts (staff); null if none.",
        extensions=[allow(*STAFF)],
    )
    def get_recipient_list(self, info: Ctx, id: strawberry.ID) -> RecipientList | None:
        return call(email_resolvers.get_recipient_list, info, id=id)

    @strawberry.field(description="Recipient lists, newest first (staff).", extensions=[allow(*STAFF)])
    def list_recipient_lists(
        self,
        info: Ctx,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> RecipientListConnection:
        return call(email_resolvers.list_recipient_lists, info, limit=limit, next_token=next_token)

    # --- campaigns ----------------------------------------------------------------------------------
    @strawberry.field(
        description="A campaign by id (staff); null if there is none.", extensions=[allow(*STAFF)]
    )
    def get_campaign(self, info: Ctx, id: strawberry.ID) -> Campaign | None:
        return call(campaign_resolvers.get_campaign, info, id=id)

    @strawberry.field(
        description="Campaigns, newest first, or those in one status (SCHEDULED: soonest due first) (staff).",
        extensions=[allow(*STAFF)],
    )
    def list_campaigns(
        self,
        info: Ctx,
        status: CampaignStatus | None = None,  # type: ignore[valid-type]
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> CampaignConnection:
        return call(
            campaign_resolvers.list_campaigns, info, status=status, limit=limit, next_token=next_token
        )

    @strawberry.field(
        description=(
            "A campaign's recipients and what happened to each message, in one status or all (staff)."
            " QUEUED lists those not sent yet (a recipient being sent this instant may be missing)."
        ),
        extensions=[allow(*STAFF)],
    )
    def list_campaign_recipients(
        self,
        info: Ctx,
        campaign_id: strawberry.ID,
        status: DeliveryStatus | None = None,  # type: ignore[valid-type]
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> CampaignRecipientConnection:
        return call(
            campaign_resolvers.list_campaign_recipients,
            info,
            campaign_id=campaign_id,
            status=status,
            limit=limit,
            next_token=next_token,
        )

    # --- audit -------------------------------------------------------------------------------------
    @strawberry.field(
        description=(
            "The audit trail, newest first (admins): one record per successful mutation, written in the"
            " same transaction as its change. Filter by actor or by record (targetType + targetId), by"
            " action, and by time (at.ge, at.le)."
        ),
        extensions=[allow(Group.ADMINS)],
    )
    def list_audit_events(
        self,
        info: Ctx,
        filter: AuditEventFilterInput | None = None,
        limit: Annotated[int | None, strawberry.argument(description="1-100, default 20.")] = None,
        next_token: str | None = None,
    ) -> AuditEventConnection:
        return call(
            audit_resolvers.list_audit_events, info, filter=filter, limit=limit, next_token=next_token
        )


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

    # --- inventory --------------------------------------------------------------------------------
    @strawberry.mutation(
        description=(
            "Record screening results and ABO/RhD typing for a donation (staff). Returns its units:"
            " released to AVAILABLE when every required test is negative, DISCARDED on any reactive"
            " or indeterminate result, still QUARANTINED while results are missing."
        ),
        extensions=[allow(*STAFF)],
    )
    def record_test_results(self, info: Ctx, input: RecordTestResultsInput) -> list[BloodUnit]:
        return call(inventory_resolvers.record_test_results, info, input=input)

    @strawberry.mutation(
        description="Discard a unit as waste, with the reason (staff). A reserved unit leaves its request.",
        extensions=[allow(*STAFF)],
    )
    def discard_unit(self, info: Ctx, input: DiscardUnitInput) -> BloodUnit:
        return call(inventory_resolvers.discard_unit, info, input=input)

    @strawberry.mutation(
        description="Move AVAILABLE units to another site: units and both sites' stock in one transaction.",
        extensions=[allow(*STAFF)],
    )
    def transfer_units(self, info: Ctx, input: TransferUnitsInput) -> list[BloodUnit]:
        return call(inventory_resolvers.transfer_units, info, input=input)

    @strawberry.mutation(
        description="Set a stock level's par level and days-of-supply limits (admins).",
        extensions=[allow(Group.ADMINS)],
    )
    def set_stock_threshold(self, info: Ctx, input: SetStockThresholdInput) -> StockLevel:
        return call(inventory_resolvers.set_stock_threshold, info, input=input)

    @strawberry.mutation(
        description="Order blood: a hospital for itself, staff on a hospital's behalf. Starts PENDING.",
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def create_blood_request(self, info: Ctx, input: CreateBloodRequestInput) -> BloodRequest:
        return call(inventory_resolvers.create_blood_request, info, input=input)

    @strawberry.mutation(
        description=(
            "Allocate compatible units to a request, first expiry first out, the patient's own group"
            " first (staff). Short stock leaves the rest outstanding: call again when stock arrives."
        ),
        extensions=[allow(*STAFF)],
    )
    def fulfill_blood_request(
        self, info: Ctx, id: strawberry.ID, client_request_token: str | None = None
    ) -> BloodRequest:
        return call(
            inventory_resolvers.fulfill_blood_request, info, id=id, client_request_token=client_request_token
        )

    @strawberry.mutation(
        description="Send a request's reserved units out to the hospital: RESERVED becomes ISSUED (staff).",
        extensions=[allow(*STAFF)],
    )
    def issue_blood_request(
        self, info: Ctx, id: strawberry.ID, client_request_token: str | None = None
    ) -> BloodRequest:
        return call(
            inventory_resolvers.issue_blood_request, info, id=id, client_request_token=client_request_token
        )

    @strawberry.mutation(
        description="Cancel a request (staff, or the hospital that placed it): reserved units go back.",
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def cancel_blood_request(
        self,
        info: Ctx,
        id: strawberry.ID,
        reason: str | None = None,
        client_request_token: str | None = None,
    ) -> BloodRequest:
        return call(
            inventory_resolvers.cancel_blood_request,
            info,
            id=id,
            reason=reason,
            client_request_token=client_request_token,
        )

    @strawberry.mutation(
        description=(
            "An issued unit came back unused (staff): AVAILABLE again if in date and not out of storage"
            " too long, DISCARDED otherwise."
        ),
        extensions=[allow(*STAFF)],
    )
    def return_unit(self, info: Ctx, input: ReturnUnitInput) -> BloodUnit:
        return call(inventory_resolvers.return_unit, info, input=input)

    @strawberry.mutation(
        description="Confirm an issued unit was transfused (the hospital it went to, or staff).",
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    def confirm_transfusion(self, info: Ctx, input: ConfirmTransfusionInput) -> BloodUnit:
        return call(inventory_resolvers.confirm_transfusion, info, input=input)

    # --- employees --------------------------------------------------------------------------------
    @strawberry.mutation(
        description=(
            "Create a profile: a staff member their own (PENDING until an admin approves it), an admin"
            " anyone's (input.id; ACTIVE at once). One profile per user (CONFLICT otherwise)."
        ),
        extensions=[allow(*STAFF)],
    )
    def create_employee_profile(self, info: Ctx, input: CreateEmployeeProfileInput) -> Employee:
        return call(employee_resolvers.create_employee_profile, info, input=input)

    @strawberry.mutation(
        description=(
            "Change a profile: an employee their own (not role or department: FORBIDDEN), admins"
            " anyone's. Stale expectedVersion gives CONFLICT."
        ),
        extensions=[allow(*STAFF)],
    )
    def update_employee_profile(self, info: Ctx, input: UpdateEmployeeProfileInput) -> Employee:
        return call(employee_resolvers.update_employee_profile, info, input=input)

    @strawberry.mutation(
        description="Approve a PENDING profile, or take back a DEACTIVATED one: ACTIVE (admins).",
        extensions=[allow(Group.ADMINS)],
    )
    def approve_employee(self, info: Ctx, id: strawberry.ID) -> Employee:
        return call(employee_resolvers.approve_employee, info, id=id)

    @strawberry.mutation(
        description="Deactivate a profile (admins; not their own).", extensions=[allow(Group.ADMINS)]
    )
    def deactivate_employee(self, info: Ctx, id: strawberry.ID) -> Employee:
        return call(employee_resolvers.deactivate_employee, info, id=id)

    @strawberry.mutation(
        description=(
            "A form to upload a profile photo straight to storage, valid 15 minutes: image/jpeg,"
            " image/png or image/webp, up to 5 MiB (5,242,880 bytes). The caller's own photo, or"
            " employeeId's for admins. The photo is checked and made into 128 and 512 px thumbnails,"
            " without its metadata (location, camera), when it lands: watch lastPhotoUpload."
        ),
        extensions=[allow(*STAFF)],
    )
    def request_employee_photo_upload(
        self, info: Ctx, content_type: str, employee_id: strawberry.ID | None = None
    ) -> UploadTicket:
        return call(
            employee_resolvers.request_employee_photo_upload,
            info,
            content_type=content_type,
            employee_id=employee_id,
        )

    # --- campaigns: templates and recipient lists ---------------------------------------------------
    @strawberry.mutation(
        description=(
            "Create an e-mail template (staff): Jinja syntax, rendered in a sandbox with strict"
            " variables and HTML escaping in the html part. A template that does not compile is"
            " BAD_USER_INPUT with the line. Templates cannot be changed afterwards."
        ),
        extensions=[allow(*STAFF)],
    )
    def create_email_template(self, info: Ctx, input: CreateEmailTemplateInput) -> EmailTemplate:
        return call(email_resolvers.create_email_template, info, input=input)

    @strawberry.mutation(
        description="Create an empty recipient list (staff); upload its CSV with requestRecipientUpload.",
        extensions=[allow(*STAFF)],
    )
    def create_recipient_list(self, info: Ctx, input: CreateRecipientListInput) -> RecipientList:
        return call(email_resolvers.create_recipient_list, info, input=input)

    @strawberry.mutation(
        description=(
            "A form to upload the list's CSV file straight to storage (staff): content type text/csv,"
            " up to 200 MiB (209,715,200 bytes), valid 15 minutes. UTF-8 (with or without BOM), UTF-16"
            " with BOM and legacy encodings such as Windows-1252 are recognized; the header row needs"
            " an email column, and other columns (at most 49, names like first_name) become template"
            " variables. The import runs when the file arrives: watch getRecipientList's status. A new"
            " form replaces an unused one; a list that holds recipients takes no other file (CONFLICT)."
        ),
        extensions=[allow(*STAFF)],
    )
    def request_recipient_upload(self, info: Ctx, list_id: strawberry.ID) -> UploadTicket:
        return call(email_resolvers.request_recipient_upload, info, list_id=list_id)

    # --- campaigns ----------------------------------------------------------------------------------
    @strawberry.mutation(
        description=(
            "Create a campaign as a DRAFT (staff): a template and exactly one audience, a recipient"
            " list (listId) or donors (segment); optional sendAt (up to 90 days ahead) and expiresAt"
            " (nothing is sent from then on)."
        ),
        extensions=[allow(*STAFF)],
    )
    def create_campaign(self, info: Ctx, input: CreateCampaignInput) -> Campaign:
        return call(campaign_resolvers.create_campaign, info, input=input)

    @strawberry.mutation(
        description=(
            "Launch a DRAFT campaign (staff): SENDING now, or SCHEDULED until sendAt. Refused"
            " (BAD_USER_INPUT) when the template uses a variable the audience lacks, and (CONFLICT) when"
            " the list is not imported yet or the campaign expired. On a PAUSED campaign, resumes it."
        ),
        extensions=[allow(*STAFF)],
    )
    def launch_campaign(self, info: Ctx, id: strawberry.ID) -> Campaign:
        return call(campaign_resolvers.launch_campaign, info, id=id)

    @strawberry.mutation(
        description="Pause a SCHEDULED or SENDING campaign (staff): nobody else is mailed until it resumes.",
        extensions=[allow(*STAFF)],
    )
    def pause_campaign(self, info: Ctx, id: strawberry.ID) -> Campaign:
        return call(campaign_resolvers.pause_campaign, info, id=id)

    @strawberry.mutation(
        description=(
            "Resume a PAUSED campaign (staff), also one that paused itself (bounce or complaint rate,"
            " daily quota): every recipient not mailed yet is mailed, once."
        ),
        extensions=[allow(*STAFF)],
    )
    def resume_campaign(self, info: Ctx, id: strawberry.ID) -> Campaign:
        return call(campaign_resolvers.resume_campaign, info, id=id)

    @strawberry.mutation(
        description="Cancel a campaign that has not finished (staff): nobody else is mailed.",
        extensions=[allow(*STAFF)],
    )
    def cancel_campaign(self, info: Ctx, id: strawberry.ID) -> Campaign:
        return call(campaign_resolvers.cancel_campaign, info, id=id)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Shortage alerts as they are raised, filtered on the server by any of the arguments (staff"
            " and hospitals). Over graphql-transport-ws or graphql-ws on /graphql; the full alert is"
            " delivered whatever the mutation that caused it selected."
        ),
        extensions=[allow(*STAFF, Group.HOSPITALS)],
    )
    async def on_shortage_alert(
        self,
        info: Ctx,
        site_id: strawberry.ID | None = None,
        blood_group: BloodGroup | None = None,  # type: ignore[valid-type]
        component: Component | None = None,  # type: ignore[valid-type]
    ) -> AsyncIterator[ShortageAlert]:
        alerts = call(
            alert_resolvers.on_shortage_alert,
            info,
            site_id=site_id,
            blood_group=blood_group,
            component=component,
        )
        async for alert in alerts:
            yield alert


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

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """Every result a subscription streams gets the same public errors as queries do."""
        results = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )
        request_id = getattr(context_value, "request_id", "-")

        async def public() -> AsyncGenerator[Any, None]:
            try:
                async for result in results:
                    errors = getattr(result, "errors", None)
                    if errors:
                        public_errors = [public_error(e, request_id, operation_name) for e in errors]
                        result.errors = public_errors  # type: ignore[union-attr]
                    yield result
            finally:
                await results.aclose()

        return public()


schema = BloodBankSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
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
