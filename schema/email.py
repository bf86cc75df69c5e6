"""GraphQL types of campaign e-mail: templates, previews, recipient lists and their imports."""

from __future__ import annotations

from datetime import datetime

import strawberry

from bloodbank.domain import recipients
from resolvers import email as email_resolvers
from schema.calls import Ctx, call

RecipientListStatus = strawberry.enum(
    recipients.ListStatus,
    name="RecipientListStatus",
    description=(
        "Where a recipient list is: EMPTY (waiting for its CSV upload), IMPORTING, READY (campaigns"
        " can use it) or FAILED (the file could not be used: see failure)."
    ),
)


@strawberry.type(
    description=(
        "An e-mail template: a subject, an HTML part and a text part, written in Jinja syntax"
        " ({{ first_name }}). Rendered in a sandbox with strict variables: every variable must have a"
        " value, never a blank. Templates never change once created."
    )
)
class EmailTemplate:
    id: strawberry.ID
    name: str = strawberry.field(description="What staff call it (1-100 characters).")
    subject: str = strawberry.field(description="The subject line template (one line).")
    html: str | None = strawberry.field(description="The HTML part's template; values are HTML-escaped.")
    text: str | None = strawberry.field(description="The plain-text part's template; values as they are.")
    created_at: datetime
    created_by: str = strawberry.field(description="The user id of the staff member who created it.")

    @strawberry.field(
        description=(
            "Every variable the subject, HTML and text use, sorted. An audience must provide each"
            " (except email and unsubscribe_url, which every send provides): a campaign is refused at"
            " launch otherwise."
        )
    )
    def variables(self) -> list[str]:
        return sorted(self.variables)


@strawberry.type(description="One page of e-mail templates, newest first.")
class EmailTemplateConnection:
    items: list[EmailTemplate]
    next_token: str | None = strawberry.field(description="Pass it back for the next page; null on the last.")


@strawberry.input(description="A new e-mail template. Give html, text, or both.")
class CreateEmailTemplateInput:
    name: str = strawberry.field(description="1-100 characters.")
    subject: str = strawberry.field(
        description="One line, at most 998 characters, e.g. 'Hello {{ first_name }}'."
    )
    html: str | None = strawberry.field(
        default=strawberry.UNSET, description="The HTML part, at most 256 KiB (UTF-8). Values are escaped."
    )
    text: str | None = strawberry.field(
        default=strawberry.UNSET, description="The plain-text part, at most 128 KiB (UTF-8)."
    )


@strawberry.type(description="An e-mail exactly as one recipient would receive it.")
class RenderedEmail:
    subject: str
    html: str | None = strawberry.field(description="Null when the template has no HTML part.")
    text: str | None = strawberry.field(description="Null when the template has no text part.")


@strawberry.type(description="What the import of a recipient list's file found, row by row.")
class RecipientListCounts:
    rows: int = strawberry.field(description="Data rows in the file (the header and blank lines excluded).")
    imported: int = strawberry.field(description="Distinct, valid, not suppressed addresses: the members.")
    duplicates: int = strawberry.field(description="Rows whose address was on an earlier row (any case).")
    invalid: int = strawberry.field(
        description="Rows with a bad address, the wrong number of fields or a value over 1,000 characters."
    )
    suppressed: int = strawberry.field(description="Addresses that bounced, complained or unsubscribed.")


@strawberry.type(
    description=(
        "Recipients uploaded as a CSV file: a header row with an email column; every other column"
        " becomes a template variable of the same name."
    )
)
class RecipientList:
    id: strawberry.ID
    name: str
    status: RecipientListStatus  # type: ignore[valid-type]
    variables: list[str] = strawberry.field(
        description="The file's columns other than email, in file order: the variables templates may use."
    )
    counts: RecipientListCounts
    failure: str | None = strawberry.field(description="Why the import FAILED, and how to fix the file.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        description=(
            "A link to the import's report (CSV: row, line, outcome, reason for every row not"
            " imported), valid 5 minutes; null when every row was imported or nothing was imported yet."
        )
    )
    def report_url(self, info: Ctx) -> str | None:
        return call(email_resolvers.report_url, info, source=self)


@strawberry.type(description="One page of recipient lists, newest first.")
class RecipientListConnection:
    items: list[RecipientList]
    next_token: str | None = strawberry.field(description="Pass it back for the next page; null on the last.")


@strawberry.input(description="A new, empty recipient list; upload its file with requestRecipientUpload.")
class CreateRecipientListInput:
    name: str = strawberry.field(description="1-100 characters.")
