"""Creating the AWS resources the code needs, against DynamoDB Local and the moto server.

Used by the local stack and the tests. On AWS the SAM template in ``infra/`` creates them instead;
``tests/infra`` checks that both agree.
"""

from __future__ import annotations

import functools
import hashlib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bloodbank.domain.identity import Group
from bloodbank.storage.table import table_definition

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


@functools.lru_cache(maxsize=32)
def client(service: str, endpoint: str | None, region: str) -> Any:
    """A boto3 client (one per service and endpoint); with an endpoint it uses dummy local credentials."""
    extra: dict[str, Any] = dict(LOCAL_CREDENTIALS) if endpoint else {}
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **extra)


def ensure_table(endpoint: str | None, region: str, name: str) -> bool:
    """Create the single table if it is missing; True when it was created."""
    ddb = client("dynamodb", endpoint, region)
    try:
        ddb.describe_table(TableName=name)
        return False
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    ddb.create_table(**table_definition(name))
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return True


def _moto_seed(moto_endpoint: str, label: str) -> None:
    """Make moto's next random ids a function of ``label``, so local users keep their ``sub``."""
    number = int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big")
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/seed?a={number}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


@dataclass(frozen=True)
class LocalUserPool:
    pool_id: str
    client_id: str


def ensure_user_pool(moto_endpoint: str, region: str, name: str) -> LocalUserPool:
    """The local Cognito user pool with its four groups and a public app client (like the web app's)."""
    idp = client("cognito-idp", moto_endpoint, region)
    pools = idp.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((p["Id"] for p in pools if p["Name"] == name), None)
    if pool_id is None:
        _moto_seed(moto_endpoint, f"pool:{name}")
        pool_id = idp.create_user_pool(
            PoolName=name,
            Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireSymbols": True}},
            AutoVerifiedAttributes=["email"],
            Schema=[{"Name": "hospital_id", "AttributeDataType": "String", "Mutable": True}],
        )["UserPool"]["Id"]
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == "web"), None)
    if client_id is None:
        _moto_seed(moto_endpoint, f"client:{name}:web")
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="web",
            GenerateSecret=False,
            # Users must not be able to move themselves to another hospital.
            ReadAttributes=["email", "email_verified", "custom:hospital_id"],
            WriteAttributes=["email"],
            ExplicitAuthFlows=[
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
        )["UserPoolClient"]["ClientId"]
    existing = {g["GroupName"] for g in idp.list_groups(UserPoolId=pool_id)["Groups"]}
    for group in Group:
        if group.value not in existing:
            idp.create_group(UserPoolId=pool_id, GroupName=group.value)
    return LocalUserPool(pool_id, client_id)


def ensure_user(
    moto_endpoint: str,
    region: str,
    pool: LocalUserPool,
    email: str,
    password: str,
    group: Group,
    attributes: dict[str, str] | None = None,
) -> str:
    """A confirmed user in one group; returns its ``sub`` (the same on every fresh moto server)."""
    idp = client("cognito-idp", moto_endpoint, region)
    try:
        user = idp.admin_get_user(UserPoolId=pool.pool_id, Username=email)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "UserNotFoundException":
            raise
        _moto_seed(moto_endpoint, f"user:{email}")
        attrs = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        attrs += [{"Name": k, "Value": v} for k, v in (attributes or {}).items()]
        idp.admin_create_user(
            UserPoolId=pool.pool_id, Username=email, MessageAction="SUPPRESS", UserAttributes=attrs
        )
        idp.admin_set_user_password(
            UserPoolId=pool.pool_id, Username=email, Password=password, Permanent=True
        )
        user = idp.admin_get_user(UserPoolId=pool.pool_id, Username=email)
    idp.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=email, GroupName=group.value)
    return str(next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub"))


def sign_in(
    moto_endpoint: str, region: str, pool: LocalUserPool, email: str, password: str
) -> dict[str, str]:
    """Tokens of a user, as the web app would get them (``AccessToken``, ``IdToken``, ``RefreshToken``)."""
    idp = client("cognito-idp", moto_endpoint, region)
    result = idp.admin_initiate_auth(
        UserPoolId=pool.pool_id,
        ClientId=pool.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return dict(result["AuthenticationResult"])


def wait_until_answers(url: str, timeout_seconds: float) -> None:
    """Poll an HTTP endpoint until it answers at all (any status), or raise TimeoutError."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout_seconds:.0f} s") from None
            time.sleep(0.1)
