"""Sending donor notifications at most once per message, whatever retries the callers make.

Each composed message has a key (kind, reference, channel). Before sending, the service claims the key
in the ledger; a claim that already exists means another run sent it (or is sending it): skip. Then:

- the send fails: the claim is released, so the next run (a retried handler) sends it;
- the send succeeds: the claim becomes SENT with the provider's message id;
- the process dies after the claim and before ``complete`` (after or even before the send): the claim
  stays, and no later run sends that message. The trade is deliberate: a donor may miss one message
  in that rare window, but is never told the same thing twice. ``CLAIMED`` items older than a few
  minutes in the ledger are exactly the messages that may not have gone out.

A send that fails ambiguously (a timeout after SNS accepted the request) is released like any other
failure, so in that case only a retry can send a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bloodbank.domain.notifications import (
    ClaimLost,
    Contact,
    NotificationKind,
    NotificationPreferences,
    OutgoingMessage,
    compose,
)
from bloodbank.errors import DependencyUnavailable
from bloodbank.ports import Clock, NotificationLedger, Notifier

log = logging.getLogger("bloodbank.notifications")


@dataclass
class NotificationService:
    notifier: Notifier
    ledger: NotificationLedger
    clock: Clock

    def notify(
        self,
        kind: NotificationKind,
        contact: Contact,
        preferences: NotificationPreferences,
        reference: str,
        facts: Mapping[str, str],
    ) -> list[str]:
        """Send what ``compose`` makes of this notification; the keys of the messages sent now.

        Messages sent by an earlier call are skipped (not in the result). If a send fails, its claim
        is released, the other channels are still tried, and then the first failure is raised: a
        retry sends only what is missing.
        """
        sent: list[str] = []
        failure: Exception | None = None
        for message in compose(kind, contact, preferences, reference, facts):
            if not self.ledger.claim(message.donor_id, message.key, self.clock()):
                log.info("notification already sent", extra=_fields(message))
                continue
            try:
                message_id = self.notifier.send(message)
            except Exception as exc:
                self._release(message)
                log.warning(
                    "notification not sent", extra={**_fields(message), "exception": type(exc).__name__}
                )
                failure = failure or exc
                continue
            sent.append(message.key)
            try:
                self.ledger.complete(message.donor_id, message.key, message_id, self.clock())
            except (DependencyUnavailable, ClaimLost) as exc:
                # Sent, and the claim (if any) still blocks a resend; only the ledger's record is short.
                log.warning(
                    "notification sent but not recorded as sent",
                    extra={**_fields(message), "message_id": message_id, "exception": type(exc).__name__},
                )
            else:
                log.info("notification sent", extra={**_fields(message), "message_id": message_id})
        if failure is not None:
            raise failure
        return sent

    def _release(self, message: OutgoingMessage) -> None:
        try:
            self.ledger.release(message.donor_id, message.key)
        except Exception as exc:
            # The claim stays: this message will not be retried (at most once still holds).
            log.error(
                "notification claim not released", extra={**_fields(message), "exception": type(exc).__name__}
            )


def _fields(message: OutgoingMessage) -> dict[str, str]:
    """What may be logged about a message: never its address or text."""
    return {"donor_id": message.donor_id, "notification_key": message.key}
