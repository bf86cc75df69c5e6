"""One-click unsubscribe (RFC 8058): the link each campaign message carries, and what following it does.

``link`` makes a recipient's ``https://<public url>/unsubscribe/<token>``; the sender puts it in the
message's ``List-Unsubscribe`` header (and the template's ``unsubscribe_url``). ``unsubscribe``
suppresses the address for every later campaign (reason UNSUBSCRIBED) and tells the campaign
(``on_unsubscribed``: the recipient's status becomes UNSUBSCRIBED). It is idempotent: a repeated
POST (mail clients retry, people click twice) suppresses nothing new but tells the campaign again,
so a crash between the two steps heals on the next click; ``on_unsubscribed`` must be idempotent too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bloodbank.domain.campaigns import SuppressionReason
from bloodbank.domain.unsubscribe import UnsubscribeTokens, Unsubscription
from bloodbank.ports import Clock, Suppressions

log = logging.getLogger("bloodbank.unsubscribe")

OnUnsubscribed = Callable[[str, str, datetime], None]  # (campaign id, recipient key, at)


def _nothing(campaign_id: str, recipient_key: str, at: datetime) -> None:
    return None


class UnsubscribeService:
    def __init__(
        self,
        suppressions: Suppressions,
        clock: Clock,
        secret: str,
        on_unsubscribed: OnUnsubscribed = _nothing,
        *,
        public_url: str = "http://127.0.0.1:8000",
    ) -> None:
        self._suppressions = suppressions
        self._clock = clock
        self._tokens = UnsubscribeTokens(secret)
        self.on_unsubscribed = on_unsubscribed  # settable: the campaign service is wired after us
        self._public_url = public_url.rstrip("/")

    def link(self, campaign_id: str, recipient_key: str) -> str:
        return f"{self._public_url}/unsubscribe/{self._tokens.issue(campaign_id, recipient_key)}"

    def check(self, token: str) -> Unsubscription:
        """What the token would unsubscribe, changing nothing (the GET confirmation page);
        ``InvalidToken`` if it is not ours."""
        return self._tokens.verify(token)

    def unsubscribe(self, token: str) -> Unsubscription:
        """Suppress the token's recipient and tell its campaign; ``InvalidToken`` if it is not ours."""
        target = self._tokens.verify(token)
        at = self._clock()
        first = self._suppressions.suppress(target.recipient_key, SuppressionReason.UNSUBSCRIBED, at)
        self.on_unsubscribed(target.campaign_id, target.recipient_key, at)
        log.info("unsubscribed", extra={"campaign": target.campaign_id, "first": first})
        return target
