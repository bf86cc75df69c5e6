"""The campaign work queue on Amazon SQS: JSON jobs, sent ten at a time.

SQS delivers at least once (and the dead-letter queue keeps what failed too often), so every job is
safe to run twice: see ``services.campaigns``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.errors import DependencyUnavailable

BATCH = 10  # SendMessageBatch's limit
ATTEMPTS = 3  # a batch's failed entries are sent again this many times


class SqsQueue:
    """Implements ``CampaignQueue``; ``client`` is a boto3 SQS client, ``url`` the queue's URL."""

    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, jobs: Sequence[Mapping[str, object]]) -> None:
        if not self._url:
            raise DependencyUnavailable("The campaign queue is not configured (BLOODBANK_CAMPAIGN_QUEUE_URL)")
        for start in range(0, len(jobs), BATCH):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps(job, separators=(",", ":"))}
                for n, job in enumerate(jobs[start : start + BATCH])
            ]
            self._send_batch(entries)

    def _send_batch(self, entries: list[dict[str, str]]) -> None:
        for _ in range(ATTEMPTS):
            try:
                response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "Unknown"))[:64]
                raise DependencyUnavailable(f"SQS refused the campaign jobs: {code}") from None
            except (BotoCoreError, OSError) as exc:
                raise DependencyUnavailable(f"SQS unreachable: {type(exc).__name__}") from None
            failed = {f["Id"] for f in response.get("Failed", [])}
            if not failed:
                return
            entries = [e for e in entries if e["Id"] in failed]
        raise DependencyUnavailable(f"SQS did not take {len(entries)} campaign jobs")
