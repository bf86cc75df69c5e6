"""Direct uploads: a client sends a file straight to object storage with a short-lived signed form.

Shared by every slice that takes files from browsers or apps (donor documents, employee photos,
campaign recipient lists): the API never carries file bytes, it only hands out tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """Where and how to upload one file.

    The client POSTs ``multipart/form-data`` to ``url`` with every entry of ``fields`` as form
    fields, then the file itself as the last part (named ``file``), before ``expires_at``. Storage
    refuses anything else than ``content_type``, a size outside 1..``max_bytes`` or another key.
    """

    url: str
    fields: dict[str, str]
    key: str
    content_type: str
    max_bytes: int
    expires_at: datetime
