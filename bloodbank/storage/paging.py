"""One page of an index Query, filled up to ``limit`` items, and where the next page starts."""

from __future__ import annotations

from typing import Any

from pynamodb.expressions.condition import Condition

from bloodbank.cursor import CursorCodec
from bloodbank.storage.models import TableItem

MAX_EVALUATED_PER_PAGE = 2000  # a filter that matches little stops here and hands back a token


def query_page(
    index: str,
    partition: str,
    limit: int,
    start: dict[str, Any] | None,
    *,
    range_condition: Condition | None = None,
    filter_condition: Condition | None = None,
    forward: bool = True,
) -> tuple[list[TableItem], dict[str, Any] | None]:
    """Up to ``limit`` items of an index partition and the key to resume from (None on the last page).

    Reads ``limit + 1`` items when nothing is filtered, so the resume key is None exactly on the last
    page; with a filter it reads on until the page is full or MAX_EVALUATED_PER_PAGE items were read.
    """
    results = getattr(TableItem, index).query(
        partition,
        range_key_condition=range_condition,
        filter_condition=filter_condition,
        scan_index_forward=forward,
        page_size=limit + 1 if filter_condition is None else min(1000, max(100, 4 * (limit + 1))),
        last_evaluated_key=start,
    )
    pages = results.page_iter
    found: list[TableItem] = []
    resume: dict[str, Any] | None = None
    for page in pages:
        for raw in page.get("Items", []):
            if len(found) == limit:
                last = found[-1]
                names = ("pk", "sk", f"{index}pk", f"{index}sk")
                resume = {name: {"S": getattr(last, name)} for name in names}
                break
            found.append(TableItem.from_raw_data(raw))
        if resume is not None or pages.last_evaluated_key is None:
            break
        if pages.total_scanned_count >= MAX_EVALUATED_PER_PAGE:
            resume = pages.last_evaluated_key
            break
    return found, resume


def token_page(
    cursors: CursorCodec,
    scope: str,
    index: str,
    partition: str,
    limit: int,
    next_token: str | None,
    *,
    range_condition: Condition | None = None,
    filter_condition: Condition | None = None,
    forward: bool = True,
) -> tuple[list[TableItem], str | None]:
    """``query_page`` from where a client's ``nextToken`` points, and the token of the rest (None on
    the last page). ``scope`` names the query: a token only works for the query it came from."""
    start = cursors.decode(next_token, scope) if next_token else None
    found, resume = query_page(
        index,
        partition,
        limit,
        start,
        range_condition=range_condition,
        filter_condition=filter_condition,
        forward=forward,
    )
    return found, cursors.encode(resume, scope) if resume else None
