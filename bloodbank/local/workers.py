"""What Lambda's triggers do on AWS, done by threads of the local server (`bloodbank serve`).

- the recipient-list import's and the photo function's S3 triggers: moto sends the bucket's
  notifications to a queue each, read here;
- the campaign queue's event source mapping: receive jobs from the (moto) SQS queue, run each with
  ``CampaignService.handle``, delete it when it ran; a job that failed becomes visible again after the
  queue's visibility timeout and runs again, as on AWS (its dead-letter queue takes it after 8);
- the schedules: the campaign scheduler every minute, the inventory expiry sweep every 15 minutes.

Everything stops when the server does. Errors are logged (without personal data) and the loops go on.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from bloodbank.adapters.s3_objects import created_objects
from bloodbank.bootstrap import Container

log = logging.getLogger("bloodbank.local.workers")

RECEIVE_WAIT_SECONDS = 1
SCHEDULES: tuple[tuple[str, float], ...] = (("campaign_scheduler", 60.0), ("expire_units", 900.0))


class LocalWorkers:
    def __init__(
        self,
        container: Container,
        sqs: Any,
        queue_url: str,
        uploads_url: str = "",
        photos_url: str = "",
        *,
        workers: int = 2,
    ) -> None:
        self._container = container
        self._sqs = sqs
        self._queue_url = queue_url
        self._uploads_url = uploads_url
        self._photos_url = photos_url
        self._workers = workers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        jobs: dict[str, Callable[[], object]] = {
            "campaign_scheduler": self._container.campaigns.tick,
            "expire_units": self._container.inventory.expire_due,
        }
        for n in range(self._workers if self._queue_url else 0):
            self._spawn(f"campaign-worker-{n}", functools.partial(self._consume, self._queue_url, self._job))
        if self._uploads_url:
            self._spawn("recipient-import", functools.partial(self._consume, self._uploads_url, self._upload))
        if self._photos_url:
            self._spawn("employee-photos", functools.partial(self._consume, self._photos_url, self._photo))
        for name, period in SCHEDULES:
            self._spawn(name, functools.partial(self._every, period, jobs[name], name))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=RECEIVE_WAIT_SECONDS + 5)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _job(self, body: str) -> None:
        self._container.campaigns.handle(json.loads(body))

    def _upload(self, body: str) -> None:
        """An S3 event notification, as the import function's trigger hands it over on AWS."""
        for found in created_objects(json.loads(body)):
            if found is not None:
                self._container.recipient_lists.import_upload(*found)

    def _photo(self, body: str) -> None:
        """An S3 event notification of a photo upload, as the photo function's trigger hands it over."""
        for found in created_objects(json.loads(body)):
            if found is not None:
                self._container.employees.process_photo(*found)

    def _consume(self, queue_url: str, run: Callable[[str], None]) -> None:
        while not self._stop.is_set():
            try:
                received = self._sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=2, WaitTimeSeconds=RECEIVE_WAIT_SECONDS
                )
            except Exception as exc:
                log.warning("local queue unreachable", extra={"exception": type(exc).__name__})
                self._stop.wait(5)
                continue
            for message in received.get("Messages", []):
                try:
                    run(message["Body"])
                except Exception as exc:  # it comes back after the visibility timeout
                    log.warning("local job failed", extra={"exception": type(exc).__name__})
                    continue
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _every(self, period: float, run: Callable[[], object], name: str) -> None:
        while not self._stop.wait(period):
            try:
                run()
            except Exception as exc:
                log.warning("scheduled job failed", extra={"job": name, "exception": type(exc).__name__})
