"""Recipient lists in the single table (ACCESS_PATTERNS.md, "Campaigns: templates and recipient
lists").

A list's partition ``LIST#<id>`` holds the ``LIST`` item (status, counts, variables) and one
``MEMBER#<address key>`` item per member, so an address imported twice lands on one item, and a
sender reads the members a page at a time in key order with one Query each. Members are written
with BatchWriteItem, 25 a request, several requests at once; what DynamoDB leaves unprocessed
(throttling) is sent again with exponential backoff and jitter. Lists are listed newest first on
gsi3 (``LISTS``).
"""

from __future__ import annotations

import builtins
import json
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynamodb.exceptions import DoesNotExist, GetError, PutError, QueryError

from bloodbank.cursor import CursorCodec
from bloodbank.domain.campaigns import address_key
from bloodbank.domain.recipients import ImportCounts, ListMember, ListStatus, RecipientList
from bloodbank.errors import Conflict, DependencyUnavailable
from bloodbank.ports import Page
from bloodbank.storage import keys, transactions
from bloodbank.storage.models import ListMemberItem, RecipientListItem, TableBinding, TableItem
from bloodbank.storage.paging import token_page

_CONDITION_FAILED = "ConditionalCheckFailedException"
BATCH = 25  # BatchWriteItem's limit
MAX_ATTEMPTS = 8  # unprocessed items are sent again up to this many times (about 13 s of backoff)
MAX_PAGE = 1000


def to_list(item: RecipientListItem) -> RecipientList:
    return RecipientList(
        id=item.list_id,
        name=item.name,
        status=ListStatus(item.status),
        variables=tuple(json.loads(item.list_variables)),
        counts=ImportCounts(
            rows=int(item.rows),
            imported=int(item.imported),
            duplicates=int(item.duplicates),
            invalid=int(item.invalid),
            suppressed=int(item.suppressed),
        ),
        created_at=item.created_at,
        updated_at=item.updated_at,
        created_by=item.created_by,
        upload_id=item.upload_id,
        report_key=item.report_key,
        failure=item.failure,
    )


def _item(recipient_list: RecipientList) -> RecipientListItem:
    counts = recipient_list.counts
    item = RecipientListItem(
        list_id=recipient_list.id,
        name=recipient_list.name,
        status=recipient_list.status.value,
        list_variables=json.dumps(list(recipient_list.variables)),
        rows=counts.rows,
        imported=counts.imported,
        duplicates=counts.duplicates,
        invalid=counts.invalid,
        suppressed=counts.suppressed,
        upload_id=recipient_list.upload_id,
        report_key=recipient_list.report_key,
        failure=recipient_list.failure,
        created_at=recipient_list.created_at,
        updated_at=recipient_list.updated_at,
        created_by=recipient_list.created_by,
    )
    item.set_key(keys.recipient_list(recipient_list.id))
    item.set_index(keys.all_recipient_lists(recipient_list.created_at, recipient_list.id))
    return item


def _member_item(list_id: str, member: ListMember) -> dict[str, Any]:
    """The member as BatchWriteItem puts it (built directly: a million of these per import)."""
    key = keys.list_member(list_id, address_key(member.email))
    item: dict[str, Any] = {
        "pk": {"S": key.pk},
        "sk": {"S": key.sk},
        "entity": {"S": "ListMember"},
        "email": {"S": member.email},
    }
    if member.variables:
        item["member_variables"] = {
            "S": json.dumps(member.variables, ensure_ascii=False, separators=(",", ":"))
        }
    return item


def _member(item: ListMemberItem) -> ListMember:
    variables = json.loads(item.member_variables) if item.member_variables else {}
    return ListMember(item.email, variables)


class DynamoRecipientLists:
    """Implements ``RecipientLists`` over the table the models are bound to (``models.bind``).

    ``writers`` BatchWriteItem requests run at once (the botocore client is thread-safe)."""

    def __init__(
        self,
        binding: TableBinding | None,
        cursors: CursorCodec,
        *,
        writers: int = 8,
        sleep: Any = time.sleep,
    ) -> None:
        self._binding = binding
        self._cursors = cursors
        self._pool = ThreadPoolExecutor(writers, thread_name_prefix="list-writer") if writers > 1 else None
        self._sleep = sleep

    # --- the list item ------------------------------------------------------------------------
    def create(self, recipient_list: RecipientList) -> None:
        """PutItem if ``pk`` is absent."""
        try:
            transactions.save(_item(recipient_list), RecipientListItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise Conflict(f"A recipient list with id {recipient_list.id} exists already") from None
            raise DependencyUnavailable(f"list write failed: {exc.cause_response_code}") from None

    def get(self, list_id: str) -> RecipientList | None:
        key = keys.recipient_list(list_id)
        try:
            return to_list(RecipientListItem.get(key.pk, key.sk, consistent_read=True))
        except DoesNotExist:
            return None
        except GetError as exc:
            raise DependencyUnavailable(f"list read failed: {exc.cause_response_code}") from None

    def list(self, limit: int, next_token: str | None) -> Page[RecipientList]:
        """Query gsi3 ``LISTS`` backwards (newest first)."""
        scope = "recipient-lists"
        found, token = token_page(
            self._cursors, scope, "gsi3", keys.ALL_RECIPIENT_LISTS, limit, next_token, forward=False
        )
        return Page([to_list(i) for i in found if isinstance(i, RecipientListItem)], token)

    def save(
        self, recipient_list: RecipientList, expected: Sequence[ListStatus], upload_id: str | None = None
    ) -> bool:
        """PutItem on the condition that the stored status is one of ``expected`` (and the upload)."""
        condition = RecipientListItem.status.is_in(*(s.value for s in expected))
        if upload_id is not None:
            condition &= RecipientListItem.upload_id == upload_id
        try:
            transactions.save(_item(recipient_list), condition)
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise DependencyUnavailable(f"list write failed: {exc.cause_response_code}") from None
        return True

    # --- members ------------------------------------------------------------------------------
    def add_members(self, list_id: str, members: Sequence[ListMember]) -> None:
        requests = [
            [_member_item(list_id, m) for m in members[i : i + BATCH]] for i in range(0, len(members), BATCH)
        ]
        if self._pool is None or len(requests) == 1:
            for request in requests:
                self._write(request)
            return
        for done in [self._pool.submit(self._write, request) for request in requests]:
            done.result()

    def _write(self, items: builtins.list[dict[str, Any]]) -> None:
        """One BatchWriteItem, then the unprocessed items again with backoff, until none is left."""
        client = TableItem._get_connection().connection.client
        table = TableItem.Meta.table_name
        pending: builtins.list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._sleep(min(5.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))  # noqa: S311
            try:
                answer = client.batch_write_item(RequestItems={table: pending})
            except Exception as exc:  # botocore's errors, after its own retries
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
                if code in ("ProvisionedThroughputExceededException", "ThrottlingException"):
                    continue
                raise DependencyUnavailable(f"member write failed: {code}") from None
            pending = answer.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                return
        raise DependencyUnavailable(f"member write failed: {len(pending)} items left unprocessed")

    def members(self, list_id: str, limit: int, next_token: str | None) -> Page[ListMember]:
        """Query ``pk = LIST#<id> AND begins_with(sk, MEMBER#)``, ``limit + 1`` items."""
        limit = min(limit, MAX_PAGE)
        scope = f"members|{list_id}"
        start = self._cursors.decode(next_token, scope) if next_token else None
        try:
            results = ListMemberItem.query(
                keys.recipient_list_partition(list_id),
                ListMemberItem.sk.startswith(keys.LIST_MEMBER_PREFIX),
                limit=limit + 1,
                page_size=limit + 1,
                last_evaluated_key=start,  # type: ignore[arg-type]  # a decoded position
            )
            found = list(results)
        except QueryError as exc:
            raise DependencyUnavailable(f"member read failed: {exc.cause_response_code}") from None
        token = None
        if len(found) > limit:
            found = found[:limit]
            last = found[-1]
            token = self._cursors.encode({"pk": {"S": last.pk}, "sk": {"S": last.sk}}, scope)
        return Page([_member(i) for i in found if isinstance(i, ListMemberItem)], token)
