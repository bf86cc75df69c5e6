"""The table's definition: one source for local provisioning, the tests and the infra check."""

from __future__ import annotations

from typing import Any

INDEXES = ("gsi1", "gsi2", "gsi3")
# Epoch seconds after which DynamoDB deletes an item (daily issue counters, idempotency records).
TTL_ATTRIBUTE = "expires"


def table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments: generic string keys, three all-projecting GSIs, on-demand, streams."""
    attributes = ["pk", "sk"] + [f"{ix}{part}" for ix in INDEXES for part in ("pk", "sk")]
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": ix,
                "KeySchema": [
                    {"AttributeName": f"{ix}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{ix}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for ix in INDEXES
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
