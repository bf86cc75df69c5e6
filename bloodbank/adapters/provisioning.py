"""Creating the AWS resources the code needs, against DynamoDB Local and the moto server.

Used by the local stack and the tests. On AWS the SAM template in ``infra/`` creates them instead;
``tests/infra`` checks that both agree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bloodbank.domain.identity import Group
from bloodbank.storage.table import TTL_ATTRIBUTE, table_definition

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


@functools.lru_cache(maxsize=32)
def client(service: str, endpoint: str | None, region: str) -> Any:
    """A boto3 client (one per service and endpoint); with an endpoint it uses dummy local credentials."""
    extra: dict[str, Any] = dict(LOCAL_CREDENTIALS) if endpoint else {}
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **extra)


def connections_client(endpoint: str, region: str, *, local: bool) -> Any:
    """API Gateway's management API of one WebSocket API (its endpoint is the API's own URL, so it
    is never the local stack's endpoint; ``local`` says whether to use the dummy credentials)."""
    extra: dict[str, Any] = dict(LOCAL_CREDENTIALS) if local else {}
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
    return boto3.client(
        "apigatewaymanagementapi", endpoint_url=endpoint, region_name=region, config=config, **extra
    )


class LazyClient:
    """A boto3 client made on first use: building one costs tens of milliseconds of a cold start,
    and most requests never call KMS, SNS or S3."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, name)


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
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    )
    return True


def _moto_seed(moto_endpoint: str, label: str) -> None:
    """Make moto's next random ids a function of ``label``, so local users keep their ``sub``."""
    number = int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big")
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/seed?a={number}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


def ensure_topic(endpoint: str | None, region: str, name: str) -> str:
    """The ARN of the SNS topic called ``name`` (CreateTopic is idempotent)."""
    return str(client("sns", endpoint, region).create_topic(Name=name)["TopicArn"])


def ensure_campaign_queue(endpoint: str | None, region: str, name: str) -> str:
    """The campaign queue's URL, with its dead-letter queue (CreateQueue is idempotent)."""
    sqs = client("sqs", endpoint, region)
    dead = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "8"})
    attributes = {"VisibilityTimeout": "60", "RedrivePolicy": redrive}
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


@dataclass(frozen=True)
class UploadRoute:
    """Which new objects of the bucket a local queue hears of (what one S3 trigger does on AWS)."""

    queue_name: str
    prefix: str
    suffix: str = ""


RECIPIENT_UPLOADS = UploadRoute("bloodbank-recipient-uploads", "recipient-lists/", ".csv")


def ensure_upload_notifications(
    endpoint: str | None, region: str, bucket: str, routes: Sequence[UploadRoute] = (RECIPIENT_UPLOADS,)
) -> dict[str, str]:
    """A queue per route that hears of every object created under its prefix (what the S3 triggers of
    the import and photo functions do on AWS); their URLs by queue name. A bucket has one
    notification configuration, so every route goes into the same one (a second put would replace
    the first)."""
    sqs = client("sqs", endpoint, region)
    urls: dict[str, str] = {}
    configurations = []
    for route in routes:
        url = str(
            sqs.create_queue(QueueName=route.queue_name, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        )
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rules = [{"Name": "prefix", "Value": route.prefix}]
        if route.suffix:
            rules.append({"Name": "suffix", "Value": route.suffix})
        configurations.append(
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": rules}}}
        )
        urls[route.queue_name] = url
    s3_client(endpoint, region).put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations}
    )
    return urls


def ensure_sender(endpoint: str | None, region: str, address: str, configuration_set: str) -> None:
    """The From address verified in SES and the configuration set campaigns send through."""
    ses = client("ses", endpoint, region)
    ses.verify_email_identity(EmailAddress=address)
    names = {c["Name"] for c in ses.list_configuration_sets().get("ConfigurationSets", [])}
    if configuration_set not in names:
        ses.create_configuration_set(ConfigurationSet={"Name": configuration_set})


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


# --- hospital integrations: app clients for the OAuth client-credentials grant --------------------
RESOURCE_SERVER = "bloodbank"  # the resource server's identifier: scopes are "bloodbank/<name>"
HOSPITAL_SCOPE_NAME = "hospital"


def ensure_resource_server(endpoint: str | None, region: str, pool_id: str) -> str:
    """The API's resource server with its ``hospital`` scope (what the template declares on AWS);
    returns the full scope, ``bloodbank/hospital``."""
    idp = client("cognito-idp", endpoint, region)
    try:
        idp.describe_resource_server(UserPoolId=pool_id, Identifier=RESOURCE_SERVER)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        idp.create_resource_server(
            UserPoolId=pool_id,
            Identifier=RESOURCE_SERVER,
            Name="Blood service API",
            Scopes=[{"ScopeName": HOSPITAL_SCOPE_NAME, "ScopeDescription": "A hospital's integration"}],
        )
    return f"{RESOURCE_SERVER}/{HOSPITAL_SCOPE_NAME}"


@dataclass(frozen=True)
class AppClient:
    client_id: str
    name: str
    secret: str = ""  # only when just created (or described): never logged, never stored by us


def create_machine_client(
    endpoint: str | None, region: str, pool_id: str, name: str, scope: str, token_minutes: int = 60
) -> AppClient:
    """A confidential app client that may only use the client-credentials grant, for ``scope``;
    its access tokens last ``token_minutes`` (Cognito allows 5 minutes to a day)."""
    result = client("cognito-idp", endpoint, region).create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=name,
        GenerateSecret=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=[scope],
        AllowedOAuthFlowsUserPoolClient=True,
        ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"],  # no user sign-in at all through this client
        SupportedIdentityProviders=["COGNITO"],
        AccessTokenValidity=token_minutes,
        TokenValidityUnits={"AccessToken": "minutes"},
        EnableTokenRevocation=True,
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]
    return AppClient(
        str(result["ClientId"]), str(result.get("ClientName", name)), str(result["ClientSecret"])
    )


def describe_app_client(
    endpoint: str | None, region: str, pool_id: str, client_id: str
) -> dict[str, Any] | None:
    """``DescribeUserPoolClient`` (secret included), or None if the pool has no such client."""
    try:
        found = client("cognito-idp", endpoint, region).describe_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ResourceNotFoundException", "InvalidParameterException"):
            return None
        raise
    return dict(found["UserPoolClient"])


def list_app_clients(endpoint: str | None, region: str, pool_id: str) -> list[AppClient]:
    """Every app client of the pool (ids and names, no secrets), all pages."""
    idp = client("cognito-idp", endpoint, region)
    found: list[AppClient] = []
    request: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": 60}
    while True:
        page = idp.list_user_pool_clients(**request)
        found += [
            AppClient(str(c["ClientId"]), str(c.get("ClientName", ""))) for c in page["UserPoolClients"]
        ]
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def delete_app_client(endpoint: str | None, region: str, pool_id: str, client_id: str) -> bool:
    """Delete the app client; False if it was gone already."""
    try:
        client("cognito-idp", endpoint, region).delete_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True


def token_url_of_pool(endpoint: str | None, region: str, pool_id: str) -> str | None:
    """The pool's OAuth 2.0 token endpoint (``https://<domain>/oauth2/token``), None without a domain."""
    pool = client("cognito-idp", endpoint, region).describe_user_pool(UserPoolId=pool_id)["UserPool"]
    if pool.get("CustomDomain"):
        return f"https://{pool['CustomDomain']}/oauth2/token"
    if pool.get("Domain"):
        suffix = "amazoncognito.com.cn" if region.startswith("cn-") else "amazoncognito.com"
        return f"https://{pool['Domain']}.auth.{region}.{suffix}/oauth2/token"
    return None


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


# --- the local PII key (moto only) --------------------------------------------------------------
class LocalKeyError(RuntimeError):
    """The local PII key cannot be set up; the message says what to do (it never holds key material)."""


def _pii_key_material(material_path: str) -> bytes:
    """32 bytes from ``material_path``; on first use they are drawn with ``secrets`` (file mode 600)."""
    import contextlib
    import os
    import secrets
    from pathlib import Path

    path = Path(material_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
            with contextlib.suppress(FileExistsError):  # atomic: a concurrent first run keeps one file
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
    os.chmod(path, 0o600)  # also tightens a file restored from a backup with looser permissions
    material = path.read_bytes()
    if len(material) != 32:
        raise LocalKeyError(
            f"{path} must hold exactly 32 bytes of key material: restore it, or delete it together "
            "with the local data it protects"
        )
    return material


def ensure_pii_key(endpoint: str, region: str, alias: str, material_path: str) -> str:
    """The key id of the local KMS key behind ``alias`` (``alias/...``), created if the server lacks it.

    moto only, for the local stack and tests: on AWS the SAM template in ``infra/`` creates the key
    and this function is not used. A moto server starts empty and moto gives every key random
    material, so the key is made so that a fresh server holds the *same* key as the last one:
    - the material is ours: ``Origin=EXTERNAL`` and ``ImportKeyMaterial`` with the 32 bytes kept in
      ``material_path`` (drawn with ``secrets`` on first use, mode 600; lose it and the local PII is
      lost too);
    - the key id is the same: moto's ciphertext blobs name the key id and Decrypt looks the key up
      by it, so the id is drawn right after seeding moto's random ids with the alias.
    moto 5.2 cannot import key material; the server must run ``python -m bloodbank.local.moto_kms``
    (``bloodbank.local.engines.moto_server`` does), otherwise this raises LocalKeyError.
    """
    if not alias.startswith("alias/"):
        raise ValueError("a KMS alias starts with 'alias/'")
    material = _pii_key_material(material_path)
    kms = client("kms", endpoint, region)
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotFoundException":
            raise
        _moto_seed(endpoint, f"kms:{alias}")
        metadata = kms.create_key(
            Origin="EXTERNAL",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Description="Donor PII data keys (local stack)",
        )["KeyMetadata"]
        _import_key_material(kms, endpoint, str(metadata["KeyId"]), material)
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        return str(metadata["KeyId"])
    if metadata.get("Origin") != "EXTERNAL":
        raise LocalKeyError(
            f"{alias} on the moto server at {endpoint} has moto's own material, which dies with the "
            "server: restart the server so that the key is created with imported material"
        )
    if metadata.get("KeyState") == "PendingImport":
        _import_key_material(kms, endpoint, str(metadata["KeyId"]), material)
    return str(metadata["KeyId"])


def _import_key_material(kms: Any, endpoint: str, key_id: str, material: bytes) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        parameters = kms.get_parameters_for_import(
            KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
            raise
        raise LocalKeyError(
            f"the moto server at {endpoint} cannot import KMS key material (moto 5.2 lacks "
            "ImportKeyMaterial): start it with `python -m bloodbank.local.moto_kms` "
            "(bloodbank.local.engines.moto_server)"
        ) from None
    public = serialization.load_der_public_key(parameters["PublicKey"])
    if not isinstance(public, rsa.RSAPublicKey):
        raise LocalKeyError("the KMS wrapping key is not an RSA key")
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    kms.import_key_material(
        KeyId=key_id,
        ImportToken=parameters["ImportToken"],
        EncryptedKeyMaterial=public.encrypt(material, oaep),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


# --- the donor documents bucket -----------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def s3_client(endpoint: str | None, region: str) -> Any:
    """An S3 client that presigns with Signature Version 4.

    Without an explicit signature version botocore presigns URLs and POST policies with SigV2 in
    regions that still accept it (us-east-1 among them); S3 refuses SigV2 for SSE-KMS objects and
    for buckets created since 2020, so document links and upload forms need this client.
    """
    extra: dict[str, Any] = dict(LOCAL_CREDENTIALS) if endpoint else {}
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config, **extra)


def ensure_documents_bucket(
    endpoint: str | None,
    region: str,
    name: str,
    kms_key_id: str,
    *,
    cors_origins: tuple[str, ...] = ("*",),
    require_tls: bool = True,
) -> bool:
    """The private documents bucket, configured as the SAM template configures it; True if created.

    Public access blocked and ACLs disabled, versioning on, default encryption SSE-KMS with
    ``kms_key_id`` (bucket key on), CORS for browser POST uploads and downloads, and a policy
    that denies any request not made over TLS. Safe to run again: settings are (re)applied.

    ``require_tls=False`` leaves the TLS-only policy out. Only for the local moto server: moto
    speaks plain HTTP and applies a Deny with principal ``*`` whatever its condition says, so the
    policy would refuse every request there.
    """
    import json

    s3 = s3_client(endpoint, region)
    try:
        s3.head_bucket(Bucket=name)  # us-east-1 answers CreateBucket of an owned bucket with 200
        created = False
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
        created = True
    if created:
        try:
            if region == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
            created = False
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    default: dict[str, str] = {"SSEAlgorithm": "aws:kms"}
    if kms_key_id:
        default["KMSMasterKeyID"] = kms_key_id
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        },
    )
    s3.put_bucket_cors(
        Bucket=name,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["POST", "GET", "HEAD"],
                    "AllowedOrigins": list(cors_origins),
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag", "x-amz-version-id"],
                    "MaxAgeSeconds": 3000,
                }
            ]
        },
    )
    if require_tls:
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if "-gov-" in region else "aws"
        arn = f"arn:{partition}:s3:::{name}"
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return created
