"""E-mail templates in the single table (ACCESS_PATTERNS.md, "Campaigns: templates and recipient
lists"): ``TEMPLATE#<id>`` / ``TEMPLATE``, listed newest first on gsi3 (``TEMPLATES``)."""

from __future__ import annotations

import json

from pynamodb.exceptions import DoesNotExist, GetError, PutError

from bloodbank.cursor import CursorCodec
from bloodbank.domain.email_templates import EmailTemplate
from bloodbank.errors import Conflict, DependencyUnavailable
from bloodbank.ports import Page
from bloodbank.storage import keys, transactions
from bloodbank.storage.models import EmailTemplateItem, TableBinding
from bloodbank.storage.paging import token_page

_CONDITION_FAILED = "ConditionalCheckFailedException"


def to_template(item: EmailTemplateItem) -> EmailTemplate:
    return EmailTemplate(
        id=item.template_id,
        name=item.name,
        subject=item.subject,
        html=item.html,
        text=item.text,
        variables=frozenset(json.loads(item.template_variables)),
        created_at=item.created_at,
        created_by=item.created_by,
    )


class DynamoEmailTemplates:
    """Implements ``EmailTemplates`` over the table the models are bound to (``models.bind``)."""

    def __init__(self, binding: TableBinding | None, cursors: CursorCodec) -> None:
        self._binding = binding
        self._cursors = cursors

    def create(self, template: EmailTemplate) -> None:
        """PutItem if ``pk`` is absent."""
        item = EmailTemplateItem(
            template_id=template.id,
            name=template.name,
            subject=template.subject,
            html=template.html,
            text=template.text,
            template_variables=json.dumps(sorted(template.variables)),
            created_at=template.created_at,
            created_by=template.created_by,
        )
        item.set_key(keys.email_template(template.id))
        item.set_index(keys.all_email_templates(template.created_at, template.id))
        try:
            transactions.save(item, EmailTemplateItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise Conflict(f"A template with id {template.id} exists already") from None
            raise DependencyUnavailable(f"template write failed: {exc.cause_response_code}") from None

    def get(self, template_id: str) -> EmailTemplate | None:
        key = keys.email_template(template_id)
        try:
            return to_template(EmailTemplateItem.get(key.pk, key.sk, consistent_read=True))
        except DoesNotExist:
            return None
        except GetError as exc:
            raise DependencyUnavailable(f"template read failed: {exc.cause_response_code}") from None

    def list(self, limit: int, next_token: str | None) -> Page[EmailTemplate]:
        """Query gsi3 ``TEMPLATES`` backwards (newest first)."""
        scope = "templates"
        found, token = token_page(
            self._cursors, scope, "gsi3", keys.ALL_EMAIL_TEMPLATES, limit, next_token, forward=False
        )
        return Page([to_template(i) for i in found if isinstance(i, EmailTemplateItem)], token)
