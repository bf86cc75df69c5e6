"""Typed settings, read once at start from the environment (or built directly by the local stack)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class SettingsError(Exception):
    """A required setting is missing or malformed; the message names it."""


# The OAuth scope (resource server ``bloodbank``, scope ``hospital``) that machine-to-machine tokens of
# registered hospital app clients carry (Cognito's client-credentials grant).
DEFAULT_MACHINE_SCOPE = "bloodbank/hospital"


@dataclass(frozen=True)
class Settings:
    region: str
    table_name: str
    user_pool_id: str
    client_ids: frozenset[str]
    page_token_secret: str = field(repr=False)
    dynamodb_endpoint: str | None = None  # DynamoDB Local; None means AWS
    aws_endpoint: str | None = None  # moto server for the other services; None means AWS
    token_issuer: str = ""  # defaults to the pool's Cognito issuer
    jwks_url: str = ""  # defaults to the issuer's /.well-known/jwks.json
    cors_origins: tuple[str, ...] = ("*",)
    graphiql: bool = True
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    # Donors: the KMS key that wraps PII data keys, the private documents bucket, the SNS topic for
    # donor e-mail notifications (SMS goes straight to the phone number). Empty: not configured.
    pii_key_id: str = ""
    documents_bucket: str = ""
    donor_topic_arn: str = ""
    # Shortage alerts: the SNS topic every alert goes to (empty: subscriptions only).
    alerts_topic_arn: str = ""
    # Donor appeals on a shortage: donors eligible now or within the window are asked, each at most
    # once per period.
    appeal_window_days: int = 7
    appeal_period_days: int = 14
    # Campaigns: where unsubscribe links point (the API's public base URL), the From address, and
    # the SES configuration set whose event destination reports deliveries, bounces, complaints.
    public_url: str = "http://127.0.0.1:8000"
    email_from: str = "no-reply@bloodbank.example"
    ses_configuration_set: str = "bloodbank"
    campaign_queue_url: str = ""  # the campaign work queue (SQS); empty: campaigns cannot launch
    # Employees: the SNS topic that hears of new and approved profiles (empty: nobody is told).
    employee_topic_arn: str = ""
    # Hospital integrations: client-credentials access tokens carrying this scope, of app clients
    # registered to a hospital (``bloodbank hospital-client create``). Empty: no machine access.
    machine_scope: str = DEFAULT_MACHINE_SCOPE
    # The WebSocket API's management endpoint (https://<api id>.execute-api.<region>.amazonaws.com/<stage>)
    # for post_to_connection. Empty: the host and stage the client connected to (right unless clients
    # come through a CloudFront distribution or a custom domain, which the template sets it for).
    websocket_endpoint: str = ""

    def __post_init__(self) -> None:
        if not self.token_issuer:
            issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"
            object.__setattr__(self, "token_issuer", issuer)
        if not self.jwks_url:
            object.__setattr__(self, "jwks_url", f"{self.token_issuer}/.well-known/jwks.json")
        if len(self.table_name) < 3:
            raise SettingsError("BLOODBANK_TABLE must be at least 3 characters (a DynamoDB rule)")
        if len(self.page_token_secret) < 32:
            raise SettingsError("BLOODBANK_PAGE_TOKEN_SECRET must be at least 32 characters")
        if not self.client_ids:
            raise SettingsError("BLOODBANK_USER_POOL_CLIENT_IDS must name at least one app client")
        if not 0 <= self.appeal_window_days <= 56:
            raise SettingsError("BLOODBANK_APPEAL_WINDOW_DAYS must be 0-56")
        if not 1 <= self.appeal_period_days <= 365:
            raise SettingsError("BLOODBANK_APPEAL_PERIOD_DAYS must be 1-365")
        if not self.public_url.startswith(("https://", "http://")):
            raise SettingsError("BLOODBANK_PUBLIC_URL must be an http(s) URL")
        if any(c.isspace() for c in self.machine_scope):
            raise SettingsError("BLOODBANK_MACHINE_SCOPE must be one OAuth scope (no spaces)")
        if self.websocket_endpoint and not self.websocket_endpoint.startswith("https://"):
            raise SettingsError("BLOODBANK_WEBSOCKET_ENDPOINT must be an https URL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is not set")
            return value

        def number(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number of days") from None

        def csv(name: str, default: str = "") -> tuple[str, ...]:
            return tuple(v.strip() for v in env.get(name, default).split(",") if v.strip())

        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            table_name=env.get("BLOODBANK_TABLE", "bloodbank"),
            user_pool_id=need("BLOODBANK_USER_POOL_ID"),
            client_ids=frozenset(csv("BLOODBANK_USER_POOL_CLIENT_IDS")),
            page_token_secret=need("BLOODBANK_PAGE_TOKEN_SECRET"),
            dynamodb_endpoint=env.get("BLOODBANK_DYNAMODB_ENDPOINT") or None,
            aws_endpoint=env.get("BLOODBANK_AWS_ENDPOINT") or None,
            token_issuer=env.get("BLOODBANK_TOKEN_ISSUER", ""),
            jwks_url=env.get("BLOODBANK_JWKS_URL", ""),
            cors_origins=csv("BLOODBANK_CORS_ORIGINS", "*"),
            graphiql=env.get("BLOODBANK_GRAPHIQL", "true").lower() in ("1", "true", "yes"),
            max_body_bytes=int(env.get("BLOODBANK_MAX_BODY_BYTES", str(1024 * 1024))),
            log_level=env.get("BLOODBANK_LOG_LEVEL", "INFO").upper(),
            pii_key_id=env.get("BLOODBANK_PII_KEY_ID", ""),
            documents_bucket=env.get("BLOODBANK_DOCUMENTS_BUCKET", ""),
            donor_topic_arn=env.get("BLOODBANK_DONOR_TOPIC_ARN", ""),
            alerts_topic_arn=env.get("BLOODBANK_ALERTS_TOPIC_ARN", ""),
            appeal_window_days=number("BLOODBANK_APPEAL_WINDOW_DAYS", 7),
            appeal_period_days=number("BLOODBANK_APPEAL_PERIOD_DAYS", 14),
            public_url=env.get("BLOODBANK_PUBLIC_URL") or "http://127.0.0.1:8000",
            email_from=env.get("BLOODBANK_EMAIL_FROM") or "no-reply@bloodbank.example",
            ses_configuration_set=env.get("BLOODBANK_SES_CONFIGURATION_SET") or "bloodbank",
            campaign_queue_url=env.get("BLOODBANK_CAMPAIGN_QUEUE_URL", ""),
            employee_topic_arn=env.get("BLOODBANK_EMPLOYEE_TOPIC_ARN", ""),
            machine_scope=env.get("BLOODBANK_MACHINE_SCOPE", DEFAULT_MACHINE_SCOPE).strip(),
            websocket_endpoint=env.get("BLOODBANK_WEBSOCKET_ENDPOINT", "").rstrip("/"),
        )

    def as_env(self) -> dict[str, str]:
        """The environment that ``from_env`` reads back into these settings."""
        env = {
            "AWS_REGION": self.region,
            "BLOODBANK_TABLE": self.table_name,
            "BLOODBANK_USER_POOL_ID": self.user_pool_id,
            "BLOODBANK_USER_POOL_CLIENT_IDS": ",".join(sorted(self.client_ids)),
            "BLOODBANK_PAGE_TOKEN_SECRET": self.page_token_secret,
            "BLOODBANK_TOKEN_ISSUER": self.token_issuer,
            "BLOODBANK_JWKS_URL": self.jwks_url,
            "BLOODBANK_CORS_ORIGINS": ",".join(self.cors_origins),
            "BLOODBANK_GRAPHIQL": "true" if self.graphiql else "false",
            "BLOODBANK_MAX_BODY_BYTES": str(self.max_body_bytes),
            "BLOODBANK_LOG_LEVEL": self.log_level,
            "BLOODBANK_PII_KEY_ID": self.pii_key_id,
            "BLOODBANK_DOCUMENTS_BUCKET": self.documents_bucket,
            "BLOODBANK_DONOR_TOPIC_ARN": self.donor_topic_arn,
            "BLOODBANK_ALERTS_TOPIC_ARN": self.alerts_topic_arn,
            "BLOODBANK_APPEAL_WINDOW_DAYS": str(self.appeal_window_days),
            "BLOODBANK_APPEAL_PERIOD_DAYS": str(self.appeal_period_days),
            "BLOODBANK_PUBLIC_URL": self.public_url,
            "BLOODBANK_EMAIL_FROM": self.email_from,
            "BLOODBANK_SES_CONFIGURATION_SET": self.ses_configuration_set,
            "BLOODBANK_CAMPAIGN_QUEUE_URL": self.campaign_queue_url,
            "BLOODBANK_EMPLOYEE_TOPIC_ARN": self.employee_topic_arn,
            "BLOODBANK_MACHINE_SCOPE": self.machine_scope,
            "BLOODBANK_WEBSOCKET_ENDPOINT": self.websocket_endpoint,
        }
        if self.dynamodb_endpoint:
            env["BLOODBANK_DYNAMODB_ENDPOINT"] = self.dynamodb_endpoint
        if self.aws_endpoint:
            env["BLOODBANK_AWS_ENDPOINT"] = self.aws_endpoint
        return env
