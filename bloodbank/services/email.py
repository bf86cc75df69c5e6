"""E-mail templates: create, read, list, and preview exactly what a recipient would receive.

Only blood service staff compose campaigns. A template is written once and never edited: a
campaign that used it keeps meaning what it meant (a changed text is a new template).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bloodbank.domain import email_templates as rules
from bloodbank.domain import text
from bloodbank.domain.email_templates import EmailTemplate, RenderedEmail
from bloodbank.domain.identity import Identity
from bloodbank.errors import BadUserInput, FieldProblem, Forbidden, NotFound
from bloodbank.ports import Clock, EmailTemplates, IdGenerator, Page
from bloodbank.services.donors import page_size

MAX_PREVIEW_VALUES = 100


def require_staff(identity: Identity, what: str) -> None:
    if not identity.is_staff:
        raise Forbidden(f"Only blood service staff can {what}")


def checked_id(field: str, value: str) -> str:
    try:
        return text.identifier(field, value)
    except text.Invalid as bad:
        raise BadUserInput.of([bad.problem]) from None


def preview_values(data: object) -> dict[str, str]:
    """``previewEmail``'s data: a JSON object of strings (numbers and booleans are taken as the text
    a CSV cell would hold); anything else is BadUserInput naming the key."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise BadUserInput.of([FieldProblem("data", "must be a JSON object of variable names to values")])
    if len(data) > MAX_PREVIEW_VALUES:
        raise BadUserInput.of([FieldProblem("data", f"may hold at most {MAX_PREVIEW_VALUES} values")])
    values: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, bool):
            values[str(name)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[str(name)] = str(value)
        else:
            raise BadUserInput.of([FieldProblem(f"data.{name}", "must be a string, a number or a boolean")])
    return values


@dataclass
class EmailTemplateService:
    templates: EmailTemplates
    clock: Clock
    new_id: IdGenerator

    def create(self, identity: Identity, values: Mapping[str, object]) -> EmailTemplate:
        require_staff(identity, "create e-mail templates")
        draft = rules.validate_new(values)
        template = rules.new_template(self.new_id(), draft, self.clock(), identity.sub)
        self.templates.create(template)
        return template

    def get(self, identity: Identity, template_id: str) -> EmailTemplate | None:
        require_staff(identity, "read e-mail templates")
        return self.templates.get(checked_id("id", template_id))

    def list(self, identity: Identity, limit: int | None, next_token: str | None) -> Page[EmailTemplate]:
        require_staff(identity, "list e-mail templates")
        return self.templates.list(page_size(limit), next_token)

    def preview(self, identity: Identity, template_id: str, data: object) -> RenderedEmail:
        """The e-mail a recipient with these values would receive (a placeholder unsubscribe link)."""
        require_staff(identity, "preview e-mails")
        template = self.templates.get(checked_id("templateId", template_id))
        if template is None:
            raise NotFound(f"No e-mail template with id {template_id}")
        return rules.preview(template, preview_values(data))
