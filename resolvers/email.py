"""Resolvers of campaign e-mail: templates, previews, recipient lists and their uploads."""

from __future__ import annotations

from bloodbank.domain.email_templates import EmailTemplate, RenderedEmail
from bloodbank.domain.recipients import RecipientList
from bloodbank.domain.uploads import UploadTicket
from bloodbank.ports import Page
from resolvers.context import ResolverEvent


def create_email_template(event: ResolverEvent) -> EmailTemplate:
    return event.services.email_templates.create(event.caller, event.arguments["input"])


def get_email_template(event: ResolverEvent) -> EmailTemplate | None:
    return event.services.email_templates.get(event.caller, event.arguments["id"])


def list_email_templates(event: ResolverEvent) -> Page[EmailTemplate]:
    args = event.arguments
    return event.services.email_templates.list(event.caller, args.get("limit"), args.get("next_token"))


def preview_email(event: ResolverEvent) -> RenderedEmail:
    args = event.arguments
    return event.services.email_templates.preview(event.caller, args["template_id"], args.get("data"))


def create_recipient_list(event: ResolverEvent) -> RecipientList:
    return event.services.recipient_lists.create(event.caller, event.arguments["input"])


def get_recipient_list(event: ResolverEvent) -> RecipientList | None:
    return event.services.recipient_lists.get(event.caller, event.arguments["id"])


def list_recipient_lists(event: ResolverEvent) -> Page[RecipientList]:
    args = event.arguments
    return event.services.recipient_lists.list(event.caller, args.get("limit"), args.get("next_token"))


def request_recipient_upload(event: ResolverEvent) -> UploadTicket:
    return event.services.recipient_lists.request_upload(event.caller, event.arguments["list_id"])


def report_url(event: ResolverEvent) -> str | None:
    recipient_list: RecipientList = event.source
    return event.services.recipient_lists.report_url(event.caller, recipient_list)
