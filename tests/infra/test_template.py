"""The SAM template in ``infra/`` and the code agree, and the template passes cfn-lint.

The template is read with a small YAML loader that turns CloudFormation short tags (``!Ref``, ``!Sub``,
...) into their long form, so these tests need neither cfn-lint nor network. Whatever the code defines
(table keys, settings names, groups, CORS headers, routes) is taken from the code, never restated here.
"""

from __future__ import annotations

import ast
import logging
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bloodbank.domain.identity import Group
from bloodbank.settings import Settings, SettingsError
from bloodbank.storage.models import IdempotencyItem, IssuedDayItem
from bloodbank.storage.table import TTL_ATTRIBUTE, table_definition

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE = INFRA / "template.yaml"

# Lambda's reserved variables: a function may not set them (AWS_REGION is also in Settings.as_env()).
LAMBDA_RESERVED = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
}
# Services that hold data: no wildcard in their action names, no "Resource: *" in identity policies.
DATA_SERVICES = {"dynamodb", "s3", "kms", "secretsmanager", "sqs", "sns", "ses", "ssm", "logs"}
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
# Statements IAM only allows on every resource, by Sid, with the one action each may hold.
RESOURCE_STAR_ALLOWED = {
    "SmsToPhoneNumbers": ["sns:Publish"],  # an SMS to a phone number has no ARN
    "SendQuota": ["ses:GetSendQuota"],  # no resource-level permissions
    "XRayTraces": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],  # trace segments have no ARN
}
# Variables that aws-lambda-powertools reads (not Settings): the metrics' namespace and service dimension.
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
# The one Deny a function role may hold: audit records (pk AUDIT#...) are append-only.
AUDIT_DENY_SID = "AuditRecordsAreAppendOnly"
# What a Lambda event source mapping calls to read a DynamoDB stream (on the stream's ARN, not the table).
STREAM_ACTIONS = {"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"}
# What each handler calls on the table (bloodbank/storage/ACCESS_PATTERNS.md). TransactWriteItems is
# authorized per item: PutItem, UpdateItem, DeleteItem, ConditionCheckItem. A role shared by several
# functions must grant the union. A new function's handler goes here, with what it calls.
TABLE_OPERATIONS = {
    # Reads, conditional writes and transactions (donors, donations, inventory), Query, GET /health.
    "handler.http_handler": {
        "BatchGetItem",
        "ConditionCheckItem",
        "DeleteItem",
        "DescribeTable",
        "GetItem",
        "PutItem",
        "Query",
        "UpdateItem",
    },
    # Due reminders (Query), donors (GetItem), the notification ledger (Put, Update, Delete).
    "handler.eligibility_reminders": {"DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"},
    # One Query per site on an index; units, stock counters and ledger entries in transactions.
    "handler.expire_units": {
        "BatchGetItem",
        "ConditionCheckItem",
        "GetItem",
        "PutItem",
        "Query",
        "UpdateItem",
    },
    # WebSocket routes: the connection (Get, Put), a subscription (Put if new, Delete), a
    # connection's items (Query, to count them; BatchWriteItem, to drop them), hospital memberships.
    "handler.websocket": {"BatchWriteItem", "DeleteItem", "GetItem", "PutItem", "Query"},
    # Two index Queries per alert; expired subscriptions and gone connections are dropped.
    "handler.fan_out_alerts": {"BatchWriteItem", "DeleteItem", "Query"},
    "handler.websocket_keep_alive": {"BatchWriteItem", "Query"},
    # The site's donors (index Query), the level (GetItem), appeal claims and the notification ledger.
    "handler.appeal_donors": {"DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"},
    # Campaigns, the send ledger in transactions with its counters, suppressions, donor segments.
    "handler.campaign_worker": {
        "BatchGetItem",
        "ConditionCheckItem",
        "GetItem",
        "PutItem",
        "Query",
        "UpdateItem",
    },
    # A recipient's change with its counters, the stats, suppressions, a guardrail's pause.
    "handler.ses_events": {"ConditionCheckItem", "GetItem", "PutItem", "Query", "UpdateItem"},
    "handler.campaign_scheduler": {"ConditionCheckItem", "GetItem", "PutItem", "Query", "UpdateItem"},
    # The list, its members (batch writes), suppressions (batch reads).
    "handler.import_recipients": {
        "BatchGetItem",
        "BatchWriteItem",
        "GetItem",
        "PutItem",
        "Query",
        "UpdateItem",
    },
    # The profile: a consistent GetItem, then a PutItem conditional on its version (E3).
    "handler.process_employee_photo": {"GetItem", "PutItem"},
    # The table's stream only (STREAM_ACTIONS, on the stream's ARN): no item of the table.
    "handler.watch_audit_records": set(),
}
# Handlers that touch table items only: their role reaches the table, its key and their logs, no more
# (no donors' personal-data key, documents or notifications), and grants exactly TABLE_OPERATIONS.
TABLE_ONLY_HANDLERS = {
    "handler.expire_units",
    "handler.websocket",
    "handler.fan_out_alerts",
    "handler.websocket_keep_alive",
}
_CONNECTIONS = repr(
    {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        "${WebSocketApi}/${WebSocketStage}/*/@connections/*"
    }
)
# What such a handler may reach besides the table: the sweep raises shortage alerts; the WebSocket
# functions post to (and close) the connections of this stack's WebSocket API.
TABLE_ONLY_EXTRAS = {
    "handler.expire_units": {"sns:Publish": {repr({"Ref": "AlertsTopic"})}},
    "handler.websocket": {"execute-api:ManageConnections": {_CONNECTIONS}},
    "handler.fan_out_alerts": {"execute-api:ManageConnections": {_CONNECTIONS}},
    "handler.websocket_keep_alive": {"execute-api:ManageConnections": {_CONNECTIONS}},
}
NEVER_ON_THE_TABLE = {"Scan", "CreateTable", "DeleteTable", "UpdateTable", "PartiQLSelect", "PartiQLUpdate"}


# --- reading the template --------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads ``!Tag value`` as CloudFormation's long form (``{"Fn::Tag": value}``)."""


def _short_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_tag)


@cache
def template() -> dict[str, Any]:
    loaded = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader
    assert isinstance(loaded, dict)
    return loaded


def resources(*types: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template()["Resources"].items() if r["Type"] in types}


def only(type_: str) -> tuple[str, dict[str, Any]]:
    found = resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return dict(resource.get("Properties", {}))


def _sam_merge(global_value: Any, own: Any) -> Any:
    """SAM's Globals rule: maps are merged (the resource's keys win), lists add up (globals first),
    anything else is the resource's."""
    if isinstance(global_value, dict) and isinstance(own, dict) and not _is_intrinsic(own):
        merged = dict(global_value)
        for key, value in own.items():
            merged[key] = _sam_merge(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(own, list):
        return [*global_value, *own]
    return own


def _is_intrinsic(value: dict[str, Any]) -> bool:
    (key, *more) = value or {"": None}
    return not more and (key in ("Ref", "Condition") or key.startswith("Fn::"))


def function_props(resource: dict[str, Any]) -> dict[str, Any]:
    """A function's properties with SAM's ``Globals.Function`` merged in the way SAM merges them."""
    if not resource["Type"].startswith("AWS::Serverless::"):
        return props(resource)
    merged = _sam_merge(template().get("Globals", {}).get("Function", {}), props(resource))
    assert isinstance(merged, dict)
    return merged


def functions() -> dict[str, dict[str, Any]]:
    found = resources(*FUNCTION_TYPES)
    assert found, "the template defines no function"
    return found


# Per-function tests are parametrized by logical id, so a failure names the function it is about.
FUNCTION_NAMES = sorted(resources(*FUNCTION_TYPES))


def function(name: str) -> dict[str, Any]:
    return functions()[name]


def handler_of(name: str) -> str:
    return str(function_props(function(name))["Handler"])


def is_ref(value: Any, target: str) -> bool:
    return value == {"Ref": target}


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- a tiny evaluator: parameter defaults and stand-ins for what only exists once deployed ----------------


def _secret_stand_in(secret_name: str) -> str:
    """A value as long as the one the secret's generator makes (so Settings' length rule is checked)."""
    secret = template()["Resources"][secret_name]
    assert secret["Type"] == "AWS::SecretsManager::Secret", f"{secret_name} is not a secret"
    generate = props(secret).get("GenerateSecretString")
    assert generate, f"{secret_name} must be generated (GenerateSecretString), never typed in"
    return "s" * int(generate.get("PasswordLength", 32))


def evaluate(value: Any) -> Any:
    """Resolve intrinsics the way a default deployment would, with placeholders for physical ids."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            parameter = template().get("Parameters", {}).get(arg)
            if parameter is not None:
                default = str(parameter["Default"])
                return default.split(",") if parameter["Type"] == "CommaDelimitedList" else default
            assert arg in template()["Resources"] or arg.startswith("AWS::"), f"Ref to unknown {arg}"
            return f"{arg}-physical-id"
        if key == "Fn::GetAtt":
            return f"{arg[0]}-{arg[1]}"
        if key == "Fn::Join":
            separator, items = arg
            items = evaluate(items)
            return separator.join(str(evaluate(i)) for i in items)
        if key == "Fn::Sub":
            assert isinstance(arg, str), "Fn::Sub with a variable map is not evaluated here"
            text = re.sub(
                r"\{\{resolve:secretsmanager:\$\{(\w+)\}[^}]*\}\}", lambda m: _secret_stand_in(m[1]), arg
            )
            assert "{{resolve:" not in text, f"unsupported dynamic reference in {arg!r}"
            return re.sub(r"\$\{([\w:]+)(?:\.(\w+))?\}", lambda m: evaluate({"Ref": m[1]}), text)
        if key == "Fn::If":
            condition, when_true, when_false = arg
            return evaluate(when_true if _condition(condition) else when_false)
        raise AssertionError(f"cannot evaluate {key} here; extend evaluate() in tests/infra")
    if isinstance(value, list):
        return [evaluate(v) for v in value]
    return value


def _condition(name: str) -> bool:
    """A template condition as a default deployment evaluates it (Fn::Not / Fn::Equals only)."""
    expression = template()["Conditions"][name]

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Fn::Not":
                return not value(arg[0])
            if key == "Fn::Equals":
                return evaluate(arg[0]) == evaluate(arg[1])
        return node

    return bool(value(expression))


# --- the table ---------------------------------------------------------------------------------------------


def _by_name(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def test_table_keys_indexes_billing_and_stream_match_table_definition() -> None:
    _, table = only("AWS::DynamoDB::Table")
    p = props(table)
    code = table_definition("ignored")

    assert _by_name(p["AttributeDefinitions"], "AttributeName") == _by_name(
        code["AttributeDefinitions"], "AttributeName"
    )
    assert p["KeySchema"] == code["KeySchema"]
    template_indexes = _by_name(p.get("GlobalSecondaryIndexes", []), "IndexName")
    code_indexes = _by_name(code["GlobalSecondaryIndexes"], "IndexName")
    assert set(template_indexes) == set(code_indexes)
    for name, index in code_indexes.items():
        assert template_indexes[name]["KeySchema"] == index["KeySchema"], name
        assert template_indexes[name]["Projection"] == index["Projection"], name
    assert p["BillingMode"] == code["BillingMode"]
    assert p["StreamSpecification"]["StreamViewType"] == code["StreamSpecification"]["StreamViewType"]
    assert "LocalSecondaryIndexes" not in p, "table_definition() has no LSIs"
    assert p["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    for model in (IssuedDayItem, IdempotencyItem):  # the items that set it use that attribute
        assert model.expires.attr_name == TTL_ATTRIBUTE


def test_table_is_encrypted_with_a_rotated_key_backed_up_and_retained() -> None:
    _, table = only("AWS::DynamoDB::Table")
    p = props(table)
    assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    sse = p["SSESpecification"]
    assert sse["SSEEnabled"] is True
    assert sse["SSEType"] == "KMS"
    key_name = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    key = template()["Resources"][key_name]
    assert key["Type"] == "AWS::KMS::Key"
    assert props(key)["EnableKeyRotation"] is True
    # A retained table is unreadable without its key: both stay when the stack goes.
    for resource in (table, key):
        assert resource.get("DeletionPolicy") == "Retain"
        assert resource.get("UpdateReplacePolicy") == "Retain"


# --- the function: settings and handler --------------------------------------------------------------------


def _aws_settings_env() -> dict[str, str]:
    """``Settings.as_env()`` of settings as on AWS: no DynamoDB Local or moto endpoints."""
    return Settings(
        region="eu-west-2",
        table_name="bloodbank",
        user_pool_id="eu-west-2_example",
        client_ids=frozenset({"client"}),
        page_token_secret="p" * 32,
    ).as_env()


def _required_env_names() -> set[str]:
    """Variables ``Settings.from_env`` cannot do without: leaving one out raises SettingsError."""
    complete = _aws_settings_env()
    Settings.from_env(complete)  # the complete set is fine
    required = set()
    for name in complete:
        try:
            Settings.from_env({k: v for k, v in complete.items() if k != name})
        except SettingsError:
            required.add(name)
    return required


def _environment(resource: dict[str, Any]) -> dict[str, Any]:
    return dict(function_props(resource).get("Environment", {}).get("Variables", {}))


def test_template_defines_functions_and_each_is_tested() -> None:
    assert sorted(functions()) == FUNCTION_NAMES  # functions() fails if there are none


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_environment_names_are_the_ones_settings_reads(name: str) -> None:
    allowed = (set(_aws_settings_env()) - LAMBDA_RESERVED) | POWERTOOLS_ENV
    required = _required_env_names()
    assert required, "Settings.from_env should require something (pool, clients, page-token secret)"
    env = _environment(function(name))
    assert not set(env) & LAMBDA_RESERVED, f"{name} sets variables Lambda reserves"
    assert set(env) <= allowed, f"{name} sets variables Settings never reads: {sorted(set(env) - allowed)}"
    missing = required - LAMBDA_RESERVED - set(env)
    assert not missing, f"{name} lacks required settings {sorted(missing)}"


def _deployed_env(name: str) -> dict[str, str]:
    """The function's environment in the default deployment (AWS_REGION is set by Lambda)."""
    values = {k: str(evaluate(v)) for k, v in _environment(function(name)).items()}
    return {**values, "AWS_REGION": "eu-west-2"}


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_environment_refers_to_this_stack_and_parses_into_settings(name: str) -> None:
    table_name, _ = only("AWS::DynamoDB::Table")
    pool_name, _ = only("AWS::Cognito::UserPool")
    clients = {
        n
        for n, c in resources("AWS::Cognito::UserPoolClient").items()
        if is_ref(props(c)["UserPoolId"], pool_name)
    }
    assert clients, "the user pool has no app client"
    env = _environment(function(name))
    assert is_ref(env["BLOODBANK_TABLE"], table_name), name
    assert is_ref(env["BLOODBANK_USER_POOL_ID"], pool_name), name
    client_ids = env["BLOODBANK_USER_POOL_CLIENT_IDS"]
    assert client_ids["Fn::Join"][0] == ","
    assert {i["Ref"] for i in client_ids["Fn::Join"][1]} == clients, f"{name}: accept every app client"
    secret = env["BLOODBANK_PAGE_TOKEN_SECRET"]
    assert isinstance(secret, dict), f"{name}: the page-token secret must not be a literal"
    assert "{{resolve:secretsmanager:" in secret.get("Fn::Sub", ""), (
        f"{name}: resolve it from Secrets Manager"
    )

    # Every function can change stock (the sweep expires units), so every one announces shortages.
    topic_name, _ = next((n, t) for n, t in resources("AWS::SNS::Topic").items() if n == "AlertsTopic")
    assert is_ref(env["BLOODBANK_ALERTS_TOPIC_ARN"], topic_name), name

    settings = Settings.from_env(_deployed_env(name))
    assert settings.dynamodb_endpoint is None
    assert settings.aws_endpoint is None
    assert settings.token_issuer.startswith("https://cognito-idp.eu-west-2.amazonaws.com/")


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_environment_starts_the_container_handler_py_builds(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """handler.py builds the whole container at start, for every function: what it needs beyond
    ``Settings.from_env`` (the PII key, even where a function never opens personal data) must be set."""
    import bloodbank.storage.models
    from bloodbank.bootstrap import build_container

    # bind() points the process-wide models at a table; nothing here may leak into other tests.
    monkeypatch.setattr(bloodbank.storage.models, "bind", lambda binding: None)
    build_container(Settings.from_env(_deployed_env(name)))


def test_log_level_choices_are_python_levels() -> None:
    for level in template()["Parameters"]["LogLevel"]["AllowedValues"]:
        assert isinstance(logging.getLevelName(Settings.from_env(_minimal_env(level)).log_level), int), level


def _minimal_env(log_level: str) -> dict[str, str]:
    return {
        "BLOODBANK_USER_POOL_ID": "eu-west-2_example",
        "BLOODBANK_USER_POOL_CLIENT_IDS": "client",
        "BLOODBANK_PAGE_TOKEN_SECRET": "p" * 32,
        "BLOODBANK_LOG_LEVEL": log_level,
    }


def _top_level_names(source: Path) -> dict[str, ast.stmt]:
    """Names a module binds at top level and the statement that binds each, read with ``ast``
    (importing handler.py would build the app)."""
    names: dict[str, ast.stmt] = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            names |= {t.id: node for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0]: node for a in node.names}
    return names


def _packaged_top_level_names() -> set[str]:
    """Top-level modules and package patterns the wheel (and so the Lambda package) contains."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return set(setuptools.get("py-modules", [])) | {
        p.rstrip("*") for p in setuptools.get("packages", {}).get("find", {}).get("include", [])
    }


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_function_handler_exists_and_is_packaged(name: str) -> None:
    p = function_props(function(name))
    code_dir = (INFRA / p["CodeUri"]).resolve()
    module, _, attribute = p["Handler"].rpartition(".")
    assert module, f"{name}: Handler must be module.attribute"
    assert attribute, f"{name}: Handler must be module.attribute"
    as_file = code_dir / Path(*module.split(".")).with_suffix(".py")
    as_package = code_dir / Path(*module.split(".")) / "__init__.py"
    source = as_file if as_file.is_file() else as_package
    assert source.is_file(), f"{name}: no module {module} under {code_dir}"
    defined = _top_level_names(source)
    assert attribute in defined, f"{name}: {module} does not define {attribute}"
    assert module.split(".")[0] in _packaged_top_level_names(), f"{name}: {module} is not in the wheel"
    # Lambda calls handler(event, context) and does not await it.
    node = defined[attribute]
    assert not isinstance(node, ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom), (
        f"{name}: {p['Handler']} must be a plain function or a callable object"
    )
    if isinstance(node, ast.FunctionDef):
        positional = [*node.args.posonlyargs, *node.args.args]
        assert len(positional) >= 2 or node.args.vararg, f"{name}: {attribute} must take (event, context)"
        assert len(positional) - len(node.args.defaults) <= 2, f"{name}: Lambda passes only (event, context)"
        assert not [
            a for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d is None
        ], f"{name}: Lambda passes no keyword arguments"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_function_runtime_is_a_python_the_project_supports(name: str) -> None:
    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    runtime = function_props(function(name))["Runtime"]
    assert runtime.startswith("python"), f"{name}: {runtime}"
    assert Version(runtime.removeprefix("python")) in requires, f"{name}: {runtime} vs {requires}"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_makefile_builds_each_function_that_asks_for_it(name: str) -> None:
    """``BuildMethod: makefile`` makes ``sam build`` run ``make build-<LogicalId>`` in the CodeUri folder."""
    if function(name).get("Metadata", {}).get("BuildMethod") != "makefile":
        pytest.skip(f"{name} is not built by make")
    makefile = (INFRA / function_props(function(name))["CodeUri"]).resolve() / "Makefile"
    text = makefile.read_text(encoding="utf-8").replace("\\\n", " ")
    targets = re.findall(r"^([\w.-]+)\s*:", text, flags=re.MULTILINE)
    assert f"build-{name}" in targets, f"{makefile} has no build-{name} target: sam build cannot package it"
    phony = {t for line in re.findall(r"^\.PHONY\s*:(.*)$", text, flags=re.MULTILINE) for t in line.split()}
    assert f"build-{name}" in phony, f"list build-{name} in .PHONY (it makes no file of that name)"


# --- the functions: triggers -------------------------------------------------------------------------------

_RATE = re.compile(r"rate\((?P<n>[1-9]\d*) (?P<unit>minute|minutes|hour|hours|day|days)\)")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _events(name: str) -> dict[str, dict[str, Any]]:
    return dict(function_props(function(name)).get("Events", {}))


def _invoke_permissions(name: str) -> list[dict[str, Any]]:
    """Lambda permissions of this template for the function (how API Gateway v2 integrations invoke)."""
    return [
        props(p)
        for p in resources("AWS::Lambda::Permission").values()
        if is_ref(props(p)["FunctionName"], name)
    ]


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_function_has_a_trigger(name: str) -> None:
    assert _events(name) or _invoke_permissions(name), f"{name} has no event: nothing would ever invoke it"


def test_the_websocket_api_routes_every_message_to_its_function_which_only_it_may_invoke() -> None:
    api_name, api = only("AWS::ApiGatewayV2::Api")
    assert props(api)["ProtocolType"] == "WEBSOCKET"
    routes = {props(r)["RouteKey"]: props(r) for r in resources("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    (integration_name, integration), *more = resources("AWS::ApiGatewayV2::Integration").items()
    assert not more
    assert props(integration)["IntegrationType"] == "AWS_PROXY"
    assert "${WebSocketFunction.Arn}" in props(integration)["IntegrationUri"]["Fn::Sub"]
    for route in routes.values():
        assert is_ref(route["ApiId"], api_name)
        assert route["Target"] == {"Fn::Sub": f"integrations/${{{integration_name}}}"}
    [permission] = _invoke_permissions("WebSocketFunction")
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert f"${{{api_name}}}/" in permission["SourceArn"]["Fn::Sub"]
    assert handler_of("WebSocketFunction") == "handler.websocket"


def test_the_alerts_topic_feeds_the_fan_out() -> None:
    [event] = _events("AlertFanOutFunction").values()
    assert event["Type"] == "SNS"
    assert is_ref(event["Properties"]["Topic"], "AlertsTopic")
    assert handler_of("AlertFanOutFunction") == "handler.fan_out_alerts"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_schedules_are_valid_enabled_and_longer_than_a_run(name: str) -> None:
    timeout = int(function_props(function(name)).get("Timeout", 3))  # SAM's default timeout
    for event_name, event in _events(name).items():
        if event["Type"] not in ("Schedule", "ScheduleV2"):
            continue
        p = event["Properties"]
        expression = p["Schedule"] if event["Type"] == "Schedule" else p["ScheduleExpression"]
        assert p.get("Enabled", True) is True, f"{name}.{event_name} is disabled"
        assert p.get("State", "ENABLED") == "ENABLED", f"{name}.{event_name} is disabled"
        if expression.startswith("cron("):
            assert len(expression.removeprefix("cron(").removesuffix(")").split()) == 6, expression
            continue
        rate = _RATE.fullmatch(expression)
        assert rate, f"{name}.{event_name}: {expression!r} is neither rate(N unit) nor cron(...)"
        n, unit = int(rate["n"]), rate["unit"]
        assert unit.endswith("s") == (n != 1), (
            f"{name}.{event_name}: {expression!r}: EventBridge wants the singular for 1, the plural otherwise"
        )
        assert timeout < n * _SECONDS[unit.rstrip("s")], (
            f"{name}.{event_name}: a run may outlast the period ({timeout}s vs {expression})"
        )


# --- identity ----------------------------------------------------------------------------------------------


def test_user_pool_groups_are_the_code_groups() -> None:
    pool_name, _ = only("AWS::Cognito::UserPool")
    groups = [props(g) for g in resources("AWS::Cognito::UserPoolGroup").values()]
    assert all(is_ref(g["UserPoolId"], pool_name) for g in groups)
    assert sorted(g["GroupName"] for g in groups) == sorted(g.value for g in Group)


def _custom_attributes_in_code() -> set[str]:
    found: set[str] = set()
    for folder in ("bloodbank", "schema", "resolvers"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"custom:([A-Za-z0-9_]+)", path.read_text(encoding="utf-8")))
    return found


def test_custom_attributes_the_code_reads_exist_and_no_client_can_write_them() -> None:
    _, pool = only("AWS::Cognito::UserPool")
    custom = {
        a["Name"]: a for a in props(pool)["Schema"] if a["Name"] not in ("email", "name", "phone_number")
    }
    read_by_code = _custom_attributes_in_code()
    assert read_by_code, "the code reads custom:hospital_id"
    for attribute in read_by_code:
        assert attribute in custom, f"custom:{attribute} is read by the code but not in the pool schema"
        assert custom[attribute]["AttributeDataType"] == "String"
    # A user who could write the attribute the code trusts for authorization could pick their hospital.
    for name, client in resources("AWS::Cognito::UserPoolClient").items():
        writable = props(client).get("WriteAttributes")
        assert writable is not None, f"{name}: list WriteAttributes (the default is every writable attribute)"
        assert not {f"custom:{a}" for a in read_by_code} & set(writable), name


def test_user_pool_offers_totp_and_clients_use_srp_and_refresh_only() -> None:
    _, pool = only("AWS::Cognito::UserPool")
    p = props(pool)
    assert p["MfaConfiguration"] in ("OPTIONAL", "ON")
    assert "SOFTWARE_TOKEN_MFA" in p["EnabledMfas"]
    for name, client in resources("AWS::Cognito::UserPoolClient").items():
        flows = set(props(client)["ExplicitAuthFlows"])
        assert flows <= {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}, f"{name}: {sorted(flows)}"


# --- API ---------------------------------------------------------------------------------------------------


def _served_routes() -> set[tuple[str, str]]:
    """(method, path) of each Starlette ``Route`` in bloodbank/server.py, read with ``ast``."""
    routes: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse((ROOT / "bloodbank" / "server.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Route" and node.args:
            path = ast.literal_eval(node.args[0])
            methods = next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "methods"), ["GET"])
            routes |= {(m.upper(), path) for m in methods}
    assert routes, "no Route(...) found in bloodbank/server.py"
    return routes


def test_http_api_routes_are_served_by_the_app_and_have_no_authorizer() -> None:
    api_name, api = only("AWS::Serverless::HttpApi")
    assert "Auth" not in props(api), "the app verifies JWTs itself; /health and GraphiQL are public"
    served = _served_routes()
    routed: set[tuple[str, str]] = set()
    for function in functions().values():
        for event in function_props(function).get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            p = event["Properties"]
            assert is_ref(p["ApiId"], api_name)
            assert "Auth" not in p
            routed.add((p["Method"].upper(), p["Path"]))
    assert routed <= served, f"routes the app does not serve: {sorted(routed - served)}"
    assert {("POST", "/graphql"), ("GET", "/graphql"), ("GET", "/health")} <= routed


def test_http_api_cors_matches_the_server() -> None:
    from bloodbank.server import CORS_HEADERS

    _, api = only("AWS::Serverless::HttpApi")
    cors = props(api)["CorsConfiguration"]
    assert {h.lower() for h in cors["AllowHeaders"]} == {h.lower() for h in CORS_HEADERS}
    assert set(cors["AllowMethods"]) == {"GET", "POST", "OPTIONS"}
    assert "x-request-id" in {h.lower() for h in cors.get("ExposeHeaders", [])}
    assert cors.get("AllowCredentials", False) is False, "tokens travel in headers, never in cookies"


def _log_group(name: str) -> str:
    log_group = function_props(function(name)).get("LoggingConfig", {}).get("LogGroup")
    assert log_group, f"{name}: send logs to a log group of this template (LoggingConfig.LogGroup)"
    assert set(log_group) == {"Ref"}, f"{name}: LoggingConfig.LogGroup must be a Ref to a log group here"
    return str(log_group["Ref"])


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_log_group_has_retention(name: str) -> None:
    resource = template()["Resources"][_log_group(name)]
    assert resource["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in props(resource), name


# --- IAM ---------------------------------------------------------------------------------------------------


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every policy statement anywhere in the template (roles, key policies, resource policies)."""
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list) and all(isinstance(s, dict) and "Effect" in s for s in statements):
            yield from statements
        for value in node.values():
            yield from _statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _statements(value)


def test_policies_have_no_wildcard_actions() -> None:
    statements = list(_statements(template()["Resources"]))
    assert statements
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement, statement
        for action in listed(statement["Action"]):
            assert isinstance(action, str), f"write actions literally: {action}"
            service, _, operation = action.partition(":")
            assert action != "*", "an Allow of every action"
            assert operation != "*", f"wildcard action {action}"
            if service in DATA_SERVICES:
                assert "*" not in operation, f"wildcard action on a data service: {action}"
                if "Principal" not in statement and statement.get("Sid") not in RESOURCE_STAR_ALLOWED:
                    assert "*" not in listed(statement["Resource"]), f"{action} on every resource"


def test_statements_on_every_resource_hold_only_their_one_action() -> None:
    for statement in _statements(template()["Resources"]):
        if statement.get("Sid") in RESOURCE_STAR_ALLOWED and "Principal" not in statement:
            assert listed(statement["Action"]) == RESOURCE_STAR_ALLOWED[statement["Sid"]], statement


def _role(name: str) -> tuple[str, dict[str, Any]]:
    """The function's execution role: an AWS::IAM::Role of this template, named by ``!GetAtt X.Arn``."""
    p = function_props(function(name))
    assert "Policies" not in p, f"{name}: grant permissions on its role, not with SAM policy templates"
    role = p.get("Role")
    assert isinstance(role, dict), f"{name}: give it a role of this template (SAM would make one)"
    assert "Fn::GetAtt" in role, f"{name}: Role must be !GetAtt <role>.Arn"
    role_name, attribute = role["Fn::GetAtt"]
    assert attribute == "Arn", name
    resource = template()["Resources"][role_name]
    assert resource["Type"] == "AWS::IAM::Role", f"{name}: {role_name} is not an IAM role"
    return role_name, resource


def _granted(role: dict[str, Any]) -> dict[str, set[str]]:
    """Action -> the resources (as repr of their intrinsic) the role's inline policies allow it on."""
    assert not props(role).get("ManagedPolicyArns"), "managed policies are broader than the code needs"
    granted: dict[str, set[str]] = {}
    for statement in _statements(props(role).get("Policies", [])):
        if statement["Effect"] == "Deny" and statement.get("Sid") == AUDIT_DENY_SID:
            continue  # checked by test_every_role_that_writes_the_table_may_not_alter_audit_records
        assert statement["Effect"] == "Allow", "a Deny in a function role hides what the role needs"
        for action in listed(statement["Action"]):
            for resource in listed(statement["Resource"]):
                granted.setdefault(action, set()).add(repr(resource))
    return granted


def _arn(logical_id: str) -> str:
    return repr({"Fn::GetAtt": [logical_id, "Arn"]})


def _table_arns() -> tuple[str, str]:
    table_name, _ = only("AWS::DynamoDB::Table")
    return _arn(table_name), repr({"Fn::Sub": f"${{{table_name}.Arn}}/index/*"})


def _table_key() -> str:
    _, table = only("AWS::DynamoDB::Table")
    return str(props(table)["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0])


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_role_is_assumed_by_lambda_of_this_account_only(name: str) -> None:
    _, role = _role(name)
    (statement,) = props(role)["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}, name
    assert statement["Action"] == "sts:AssumeRole", name
    assert is_ref(statement["Condition"]["StringEquals"]["aws:SourceAccount"], "AWS::AccountId"), name


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_role_can_write_the_functions_logs(name: str) -> None:
    _, role = _role(name)
    granted = _granted(role)
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert _arn(_log_group(name)) in granted.get(action, set()), f"{name}: its role lacks {action}"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_function_role_can_use_the_table_key_and_the_settings_key(name: str) -> None:
    _, role = _role(name)
    decrypt = _granted(role).get("kms:Decrypt", set())
    assert _arn(_table_key()) in decrypt, f"{name}: items are encrypted with {_table_key()}"
    settings_key = function_props(function(name)).get("KmsKeyArn")
    if settings_key is not None:
        assert repr(settings_key) in decrypt, f"{name}: Lambda decrypts its environment with its role"


def test_every_handler_says_what_it_calls_on_the_table() -> None:
    for name in FUNCTION_NAMES:
        handler = handler_of(name)
        assert handler in TABLE_OPERATIONS, f"{name}: add {handler} to TABLE_OPERATIONS in tests/infra"


def test_function_roles_grant_what_the_code_calls_and_nothing_broader_on_the_table() -> None:
    table_arn, indexes_arn = _table_arns()
    by_role: dict[str, set[str]] = {}
    for name in FUNCTION_NAMES:
        role_name, _ = _role(name)
        handler = handler_of(name)
        by_role.setdefault(role_name, set()).update(TABLE_OPERATIONS.get(handler, set()))
    for role_name, needed in by_role.items():
        granted = _granted(template()["Resources"][role_name])
        on_table = {
            a.removeprefix("dynamodb:") for a in granted if a.startswith("dynamodb:")
        } - STREAM_ACTIONS
        for operation in needed:
            assert table_arn in granted.get(f"dynamodb:{operation}", set()), (
                f"{role_name} lacks dynamodb:{operation}"
            )
        if "Query" in needed:
            assert indexes_arn in granted["dynamodb:Query"], f"{role_name} cannot query the GSIs"
        assert not on_table & NEVER_ON_THE_TABLE, (
            f"{role_name}: access patterns never scan or manage the table"
        )
        for operation in on_table:
            resources_ = granted[f"dynamodb:{operation}"]
            assert resources_ <= {table_arn, indexes_arn}, (
                f"{role_name}: dynamodb:{operation} on {resources_}"
            )
            if indexes_arn in resources_:
                assert operation == "Query", f"{role_name}: indexes are only queried, not {operation}"


def test_table_only_handlers_are_handlers_of_functions() -> None:
    handlers = {handler_of(n) for n in FUNCTION_NAMES}
    assert not TABLE_ONLY_HANDLERS - handlers, "a stale TABLE_ONLY_HANDLERS entry"


@pytest.mark.parametrize("name", [n for n in FUNCTION_NAMES if handler_of(n) in TABLE_ONLY_HANDLERS])
def test_table_only_functions_reach_the_table_its_key_and_their_logs_only(name: str) -> None:
    handler = handler_of(name)
    role_name, role = _role(name)
    assert all(
        _role(other)[0] != role_name
        for other in FUNCTION_NAMES
        if handler_of(other) not in TABLE_ONLY_HANDLERS
    ), f"{name}: {role_name} is shared with a function that needs more"
    granted = _granted(role)
    reachable = {*_table_arns(), _arn(_table_key()), _arn(_log_group(name))}
    extras = {**_every_roles_extras(name), **TABLE_ONLY_EXTRAS.get(handler, {})}
    for action, resources_ in granted.items():
        if action in extras:
            assert resources_ == extras[action], f"{name}: {action} on {resources_}"
            continue
        assert action.partition(":")[0] in ("dynamodb", "kms", "logs"), f"{name}: {action}"
        assert resources_ <= reachable, f"{name}: {action} on {resources_ - reachable}"
    on_table = {a.removeprefix("dynamodb:") for a in granted if a.startswith("dynamodb:")}
    assert on_table == TABLE_OPERATIONS[handler], (
        f"{name}: grants {sorted(on_table - TABLE_OPERATIONS[handler])}, "
        f"lacks {sorted(TABLE_OPERATIONS[handler] - on_table)}"
    )


def _failure_destination(name: str) -> Any:
    """Where Lambda sends the function's events that failed every retry (None: it is not asynchronous)."""
    config = function_props(function(name)).get("EventInvokeConfig")
    if config is None:
        return None
    return config["DestinationConfig"]["OnFailure"]["Destination"]


def _every_roles_extras(name: str) -> dict[str, set[str]]:
    """What every function's role may hold besides its own needs: X-Ray (on "*"), and SendMessage to
    the queue of its failed events."""
    extras = {"xray:PutTelemetryRecords": {repr("*")}, "xray:PutTraceSegments": {repr("*")}}
    destination = _failure_destination(name)
    if destination is not None:
        extras["sqs:SendMessage"] = {repr(destination)}
    return extras


_WRITES = {"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


def test_every_role_that_writes_the_table_may_not_alter_audit_records() -> None:
    """Audit items (``pk`` AUDIT#<id>) are written once with a conditional PutItem: every role that may
    write the table is denied UpdateItem, DeleteItem and BatchWriteItem on those partitions (IAM cannot
    tell an overwriting PutItem from a new one: the stream watcher reports those)."""
    from bloodbank.storage.keys import AUDIT_PREFIX

    table_arn, _ = _table_arns()
    writers = 0
    for role_name, role in resources("AWS::IAM::Role").items():
        statements = list(_statements(props(role).get("Policies", [])))
        writes = any(
            set(listed(s["Action"])) & _WRITES and table_arn in {repr(r) for r in listed(s["Resource"])}
            for s in statements
            if s["Effect"] == "Allow"
        )
        denies = [s for s in statements if s.get("Sid") == AUDIT_DENY_SID]
        if not writes:
            assert not denies, f"{role_name} writes nothing: drop its {AUDIT_DENY_SID}"
            continue
        writers += 1
        assert len(denies) == 1, f"{role_name} writes the table: give it the {AUDIT_DENY_SID} Deny"
        (deny,) = denies
        assert deny["Effect"] == "Deny", role_name
        assert sorted(listed(deny["Action"])) == [
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:UpdateItem",
        ], role_name
        assert {repr(r) for r in listed(deny["Resource"])} == {table_arn}, role_name
        assert deny["Condition"] == {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": [f"{AUDIT_PREFIX}*"]}}
    assert writers >= len({_role(n)[0] for n in FUNCTION_NAMES}) - 1, "only the audit watcher writes nothing"


# --- cfn-lint ----------------------------------------------------------------------------------------------


def test_cfn_lint_reports_no_errors() -> None:
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint is not installed (a dev dependency)")
    matches = api.lint_file(TEMPLATE)
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in errors)


def test_appeals_hear_shortages_only_and_read_donors_without_documents_or_new_keys() -> None:
    [event] = _events("AppealsFunction").values()
    assert event["Type"] == "SNS"
    assert is_ref(event["Properties"]["Topic"], "AlertsTopic")
    assert event["Properties"]["FilterPolicy"] == {"status": ["AMBER", "RED"]}
    assert handler_of("AppealsFunction") == "handler.appeal_donors"
    granted = _granted(_role("AppealsFunction")[1])
    assert _arn("PiiKey") in granted["kms:Decrypt"]
    assert _arn("PiiKey") not in granted.get("kms:GenerateDataKey", set()), "appeals write no personal data"
    assert not [a for a in granted if a.startswith("s3:")], "appeals never touch documents"
    assert repr({"Ref": "DonorTopic"}) in granted["sns:Publish"]


def test_campaign_jobs_flow_from_the_api_through_the_queue_to_the_worker_and_back_from_ses() -> None:
    api_grants = _granted(_role("GraphQLFunction")[1])
    assert _arn("CampaignQueue") in api_grants["sqs:SendMessage"], "launchCampaign enqueues"
    [jobs] = _events("CampaignWorkerFunction").values()
    assert jobs["Type"] == "SQS"
    assert jobs["Properties"]["Queue"] == {"Fn::GetAtt": ["CampaignQueue", "Arn"]}
    assert jobs["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    timeout = int(function_props(function("CampaignWorkerFunction"))["Timeout"])
    queue = props(template()["Resources"]["CampaignQueue"])
    assert queue["VisibilityTimeout"] >= 6 * timeout, "AWS: visibility at least six times the timeout"
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["CampaignDeadLetterQueue", "Arn"]}
    worker = _granted(_role("CampaignWorkerFunction")[1])
    assert "ses:SendRawEmail" in worker
    assert "ses:GetSendQuota" in worker
    destination = props(template()["Resources"]["SesEventDestination"])["EventDestination"]
    assert is_ref(destination["SnsDestination"]["TopicARN"], "SesEventsTopic")
    assert {"bounce", "complaint", "delivery", "send", "open", "click"} <= set(
        destination["MatchingEventTypes"]
    )
    [events] = _events("SesEventsFunction").values()
    assert is_ref(events["Properties"]["Topic"], "SesEventsTopic")
    env = _environment(function("CampaignWorkerFunction"))
    assert is_ref(env["BLOODBANK_SES_CONFIGURATION_SET"], "SesConfigurationSet")
    assert is_ref(env["BLOODBANK_CAMPAIGN_QUEUE_URL"], "CampaignQueue")


def test_recipient_uploads_trigger_the_import_and_the_api_serves_one_click_unsubscribes() -> None:
    [upload] = _events("RecipientImportFunction").values()
    assert upload["Type"] == "S3"
    assert is_ref(upload["Properties"]["Bucket"], "DocumentsBucket")
    rules = {r["Name"]: r["Value"] for r in upload["Properties"]["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": "recipient-lists/", "suffix": ".csv"}
    routes = {
        (e["Properties"]["Path"], e["Properties"]["Method"]) for e in _events("GraphQLFunction").values()
    }
    assert {("/unsubscribe/{token}", "POST"), ("/unsubscribe/{token}", "GET")} <= routes


def test_employee_photo_uploads_trigger_the_photo_function_whose_role_reaches_exactly_those_keys() -> None:
    from bloodbank.domain import employees

    [upload] = _events("EmployeePhotoFunction").values()
    assert handler_of("EmployeePhotoFunction") == "handler.process_employee_photo"
    assert upload["Type"] == "S3"
    assert is_ref(upload["Properties"]["Bucket"], "DocumentsBucket")
    assert upload["Properties"]["Events"] == "s3:ObjectCreated:*"
    rules = {r["Name"]: r["Value"] for r in upload["Properties"]["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": employees.UPLOADS_PREFIX}
    # The function writes its thumbnails outside the trigger's prefix (or it would trigger itself),
    # and the recipient import's trigger does not overlap it (S3 refuses overlapping rules).
    assert not employees.THUMBNAILS_PREFIX.startswith(employees.UPLOADS_PREFIX)
    assert not employees.thumbnail_key("e", "u", 128).startswith(employees.UPLOADS_PREFIX)
    assert employees.parse_upload_key(employees.upload_key("e", "u")) == ("e", "u")
    [imports] = _events("RecipientImportFunction").values()
    other = {r["Name"]: r["Value"] for r in imports["Properties"]["Filter"]["S3Key"]["Rules"]}["prefix"]
    assert not other.startswith(employees.UPLOADS_PREFIX)
    assert not employees.UPLOADS_PREFIX.startswith(other)

    bucket = props(template()["Resources"]["DocumentsBucket"])
    objects = f"arn:${{AWS::Partition}}:s3:::{bucket['BucketName']['Fn::Sub']}/"
    granted = _granted(_role("EmployeePhotoFunction")[1])
    s3 = {a: r for a, r in granted.items() if a.startswith("s3:")}
    assert s3 == {
        "s3:GetObject": {repr({"Fn::Sub": f"{objects}{employees.UPLOADS_PREFIX}*"})},
        "s3:PutObject": {repr({"Fn::Sub": f"{objects}{employees.THUMBNAILS_PREFIX}*"})},
    }
    assert _arn("PiiKey") in granted["kms:Decrypt"]
    assert _arn("PiiKey") in granted["kms:GenerateDataKey"]
    assert not [
        a
        for a in granted
        if a.startswith(("sns:", "sqs:", "ses:")) and a not in _every_roles_extras("EmployeePhotoFunction")
    ], "the photo function tells nobody"
    assert granted["sqs:SendMessage"] == _every_roles_extras("EmployeePhotoFunction")["sqs:SendMessage"]
    env = _environment(function("EmployeePhotoFunction"))
    assert env["BLOODBANK_DOCUMENTS_BUCKET"] == bucket["BucketName"], (
        "the bucket by name, as the role names it"
    )

    # The API signs the upload forms and the thumbnails' links, and announces profiles.
    api = _granted(_role("GraphQLFunction")[1])
    assert repr({"Fn::Sub": f"${{DocumentsBucket.Arn}}/{employees.UPLOADS_PREFIX}*"}) in api["s3:PutObject"]
    assert (
        repr({"Fn::Sub": f"${{DocumentsBucket.Arn}}/{employees.THUMBNAILS_PREFIX}*"}) in api["s3:GetObject"]
    )
    assert repr({"Ref": "EmployeeTopic"}) in api["sns:Publish"]
    assert is_ref(_environment(function("GraphQLFunction"))["BLOODBANK_EMPLOYEE_TOPIC_ARN"], "EmployeeTopic")
    lifecycle = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}["EmployeePhotoUploads"]
    assert lifecycle["Prefix"] == employees.UPLOADS_PREFIX, "originals (with their metadata) do not stay"


def test_hospital_integrations_get_tokens_with_the_scope_the_api_accepts() -> None:
    """Client-credentials tokens carry ``<resource server>/<scope>``: the resource server, the pool's
    domain (the token endpoint) and the API's BLOODBANK_MACHINE_SCOPE name the same scope."""
    from bloodbank.settings import DEFAULT_MACHINE_SCOPE

    _, server = only("AWS::Cognito::UserPoolResourceServer")
    identifier, _, scope = DEFAULT_MACHINE_SCOPE.partition("/")
    assert props(server)["Identifier"] == identifier
    assert [s["ScopeName"] for s in props(server)["Scopes"]] == [scope]
    _, domain = only("AWS::Cognito::UserPoolDomain")
    assert props(domain)["UserPoolId"] == {"Ref": "UserPool"}
    assert "${UserPoolDomain}" in template()["Outputs"]["TokenUrl"]["Value"]["Fn::Sub"]
    env = props(functions()["GraphQLFunction"])["Environment"]["Variables"]
    assert env["BLOODBANK_MACHINE_SCOPE"] == {"Fn::Sub": f"${{ApiResourceServer}}/{scope}"}
