"""The upload ticket: one type for every direct upload (donor documents, employee photos, recipient lists)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON


@strawberry.type(
    description=(
        "How to upload one file straight to storage: POST multipart/form-data to url with every entry"
        " of fields as form fields, then the file as the last part (named file), before expiresAt."
        " Storage refuses another content type, an empty file or one larger than maxBytes."
    )
)
class UploadTicket:
    url: str = strawberry.field(description="Where to POST the form.")
    fields: JSON = strawberry.field(
        description="Form fields to send unchanged: a JSON object of strings (AWSJSON, so a JSON string)."
    )
    key: str = strawberry.field(description="Where the file is stored.")
    content_type: str = strawberry.field(description="The file's content type (also in fields).")
    max_bytes: int = strawberry.field(description="The largest file storage accepts, in bytes.")
    expires_at: datetime = strawberry.field(description="The form is refused after this instant.")
