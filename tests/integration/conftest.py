"""Stores under test: the in-memory fake, in-process moto, and DynamoDB Local (Amazon's engine)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from bloodbank.adapters.provisioning import client
from bloodbank.cursor import CursorCodec
from bloodbank.fakes import InMemoryDirectory, InMemoryDonations, InMemoryDonorRepository, InMemoryFieldCipher
from bloodbank.local import seed, stack
from bloodbank.ports import DonorRepository
from bloodbank.storage.donations import DynamoDonations
from bloodbank.storage.donors import DynamoDonorRepository
from tests.conftest import PAGE_SECRET, REGION

ENGINES = ["memory", "moto", "dynamodb-local"]


@dataclass
class Store:
    engine: str
    donors: DonorRepository
    directory: Any
    raw: Callable[[str, str], dict[str, Any] | None]  # (pk, sk) -> the item as DynamoDB stores it
    donations: Any = None  # DynamoDonations or InMemoryDonations
    cipher: InMemoryFieldCipher | None = None


def raw_reader(endpoint: str | None, table: str) -> Callable[[str, str], dict[str, Any] | None]:
    """(pk, sk) -> the item as DynamoDB stores it (None if absent), read past the models."""
    ddb = client("dynamodb", endpoint, REGION)

    def raw(pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = ddb.get_item(
            TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}
        ).get("Item")
        return item

    return raw


def _dynamo_store(engine: str, endpoint: str | None) -> Store:
    name = f"bloodbank-{uuid.uuid4().hex[:12]}"
    binding = stack.open_table(endpoint, REGION, name)
    directory = stack.load_reference_data()
    raw = raw_reader(endpoint, name)
    cipher = InMemoryFieldCipher()
    cursors = CursorCodec(PAGE_SECRET)
    return Store(
        engine,
        DynamoDonorRepository(binding, cursors, cipher),
        directory,
        raw,
        DynamoDonations(binding, cursors, cipher),
        cipher,
    )


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    engine = request.param
    if engine == "memory":
        directory = InMemoryDirectory(site_list=list(seed.SITES), hospital_list=list(seed.HOSPITALS))
        donors = InMemoryDonorRepository(directory, CursorCodec(PAGE_SECRET))
        yield Store(
            engine,
            donors,
            directory,
            lambda pk, sk: None,
            InMemoryDonations(donors, CursorCodec(PAGE_SECRET)),
        )
    elif engine == "moto":
        with mock_aws():
            yield _dynamo_store(engine, None)
    else:
        yield _dynamo_store(engine, request.getfixturevalue("dynamodb_local"))


@pytest.fixture
def ddb_store(dynamodb_local: str) -> Store:
    """DynamoDB Local only: races, transactions and conditions need the real engine."""
    return _dynamo_store("dynamodb-local", dynamodb_local)
