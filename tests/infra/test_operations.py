"""The operations side of the SAM template: failed events, the audit watcher, tracing and metrics
settings, alarms, the dashboard, CloudFront, and ``make deploy`` with ``infra/samconfig.toml``.

Helpers (the template reader, the evaluator, roles and grants) come from ``test_template``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from bloodbank import observability
from tests.infra.test_template import (
    FUNCTION_NAMES,
    INFRA,
    ROOT,
    STREAM_ACTIONS,
    _arn,
    _condition,
    _events,
    _granted,
    _log_group,
    _role,
    _table_key,
    evaluate,
    function,
    function_props,
    handler_of,
    is_ref,
    listed,
    only,
    props,
    resources,
    template,
)

# The business metrics the code emits through aws-lambda-powertools (CloudWatch EMF, unit Count, one
# dimension service=bloodbank), as bloodbank/observability.py lists them.
METRICS: tuple[str, ...] = tuple(observability.METRICS)
SERVICE = "bloodbank"
NAMESPACE = {"Fn::Sub": "Bloodbank/${EnvironmentName}"}
ALARM_TOPIC = "OperationsAlarmTopic"
# Triggers that invoke a function asynchronously (Lambda retries, then hands the event on).
ASYNC_EVENT_TYPES = {"SNS", "S3", "Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"}
STREAM_EVENT_TYPES = {"DynamoDB", "Kinesis"}
FOURTEEN_DAYS = 14 * 24 * 3600
# CloudFront's managed policies (their ids are the same in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}


def _queue_of(destination: Any) -> tuple[str, dict[str, Any]]:
    """The SQS queue of this template that a ``!GetAtt Queue.Arn`` names."""
    assert isinstance(destination, dict), f"name a queue of this template, not {destination!r}"
    assert "Fn::GetAtt" in destination, destination
    name, attribute = destination["Fn::GetAtt"]
    assert attribute == "Arn", destination
    queue = template()["Resources"][name]
    assert queue["Type"] == "AWS::SQS::Queue", f"{name} is not a queue"
    return name, queue


def _assert_dead_letter_queue(name: str, queue: dict[str, Any]) -> None:
    p = props(queue)
    assert p.get("MessageRetentionPeriod") == FOURTEEN_DAYS, f"{name}: keep failed events 14 days"
    assert p.get("KmsMasterKeyId") or p.get("SqsManagedSseEnabled"), f"{name} is not encrypted"


def _can_send_to(function_name: str, queue_name: str) -> None:
    granted = _granted(_role(function_name)[1])
    assert _arn(queue_name) in granted.get("sqs:SendMessage", set()), f"{function_name}: SendMessage"
    on_queue = {a for a, r in granted.items() if _arn(queue_name) in r}
    assert on_queue == {"sqs:SendMessage"}, f"{function_name}: only SendMessage on {queue_name}"
    key = props(template()["Resources"][queue_name]).get("KmsMasterKeyId")
    if key is not None:  # SQS asks for a data key with the sender's identity
        assert is_ref(key, _table_key()), f"{queue_name}: encrypt it with {_table_key()}"
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert _arn(_table_key()) in granted.get(action, set()), f"{function_name} lacks {action}"


# --- failed events -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_asynchronously_invoked_functions_hand_events_that_keep_failing_to_a_dead_letter_queue(
    name: str,
) -> None:
    types = {e["Type"] for e in _events(name).values()}
    config = function_props(function(name)).get("EventInvokeConfig")
    if not types & ASYNC_EVENT_TYPES:
        assert config is None, f"{name} is not invoked asynchronously: EventInvokeConfig does nothing"
        return
    assert "DeadLetterQueue" not in function_props(function(name)), "one failure path: the destination"
    assert config is not None, f"{name} ({sorted(types)}): give it an EventInvokeConfig OnFailure queue"
    assert 0 <= config["MaximumRetryAttempts"] <= 2, name
    assert 60 <= config.get("MaximumEventAgeInSeconds", 21600) <= 21600, name
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS", name
    queue_name, queue = _queue_of(on_failure["Destination"])
    _assert_dead_letter_queue(queue_name, queue)
    _can_send_to(name, queue_name)


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_queue_and_stream_triggers_keep_what_fails(name: str) -> None:
    for event_name, event in _events(name).items():
        p = event["Properties"]
        if event["Type"] == "SQS":  # the source queue's redrive policy keeps what keeps failing
            _, source = _queue_of(p["Queue"])
            dlq_name, dlq = _queue_of(props(source)["RedrivePolicy"]["deadLetterTargetArn"])
            _assert_dead_letter_queue(dlq_name, dlq)
        elif event["Type"] in STREAM_EVENT_TYPES:
            assert p.get("BisectBatchOnFunctionError") is True, f"{name}.{event_name}: isolate bad records"
            assert 0 <= p["MaximumRetryAttempts"] <= 10, f"{name}.{event_name}: retries must end"
            on_failure = p["DestinationConfig"]["OnFailure"]
            assert on_failure["Type"] == "SQS", name
            queue_name, queue = _queue_of(on_failure["Destination"])
            _assert_dead_letter_queue(queue_name, queue)
            _can_send_to(name, queue_name)


def _dead_letter_queues() -> set[str]:
    """Every queue of this template that holds what failed: redrive targets and failure destinations."""
    found = set()
    for queue in resources("AWS::SQS::Queue").values():
        redrive = props(queue).get("RedrivePolicy")
        if redrive:
            found.add(_queue_of(redrive["deadLetterTargetArn"])[0])
    for name in FUNCTION_NAMES:
        config = function_props(function(name)).get("EventInvokeConfig")
        if config:
            found.add(_queue_of(config["DestinationConfig"]["OnFailure"]["Destination"])[0])
        for event in _events(name).values():
            on_failure = event["Properties"].get("DestinationConfig", {}).get("OnFailure")
            if on_failure:
                found.add(_queue_of(on_failure["Destination"])[0])
    return found


# --- the audit watcher -------------------------------------------------------------------------------------


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda's event filtering (EventBridge pattern syntax), for the subset the template uses: nested
    objects, lists of allowed values, and ``{"prefix": ...}``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _matches(v, value[k]) for k, v in pattern.items()
        )
    assert isinstance(pattern, list), f"unsupported filter pattern {pattern!r}"
    for allowed in pattern:
        if isinstance(allowed, dict):
            ((operator, operand),) = allowed.items()
            assert operator == "prefix", f"unsupported filter operator {operator}"
            if isinstance(value, str) and value.startswith(operand):
                return True
        elif value == allowed:
            return True
    return False


def _stream_record(event_name: str, pk: str) -> dict[str, Any]:
    keys = {"pk": {"S": pk}, "sk": {"S": "AUDIT" if pk.startswith("AUDIT#") else "PROFILE"}}
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": {"Keys": keys}}


def test_the_audit_watcher_hears_of_every_changed_or_removed_audit_record_and_of_nothing_else() -> None:
    from bloodbank.storage import keys

    assert handler_of("AuditWatchFunction") == "handler.watch_audit_records"
    [event] = _events("AuditWatchFunction").values()
    assert event["Type"] == "DynamoDB"
    p = event["Properties"]
    table_name, table = only("AWS::DynamoDB::Table")
    assert p["Stream"] == {"Fn::GetAtt": [table_name, "StreamArn"]}
    assert props(table)["StreamSpecification"]["StreamViewType"] in ("KEYS_ONLY", "NEW_AND_OLD_IMAGES")
    assert p["StartingPosition"] == "LATEST"
    assert p["BisectBatchOnFunctionError"] is True
    assert p["MaximumRetryAttempts"] == 5
    assert _queue_of(p["DestinationConfig"]["OnFailure"]["Destination"])[0] == "FailedEventsQueue"
    [only_filter] = p["FilterCriteria"]["Filters"]
    pattern = json.loads(only_filter["Pattern"])
    assert pattern == {
        "eventName": ["MODIFY", "REMOVE"],
        "dynamodb": {"Keys": {"pk": {"S": [{"prefix": keys.AUDIT_PREFIX}]}}},
    }
    audit_pk = keys.audit_event("e1").pk
    assert audit_pk.startswith(keys.AUDIT_PREFIX)
    for event_name in ("MODIFY", "REMOVE"):
        assert _matches(pattern, _stream_record(event_name, audit_pk)), event_name
    assert not _matches(pattern, _stream_record("INSERT", audit_pk)), "writing an audit record is normal"
    assert not _matches(pattern, _stream_record("MODIFY", "DONOR#d1")), "other items change all the time"


def test_the_audit_watcher_reads_the_stream_and_no_table_item() -> None:
    table_name, _ = only("AWS::DynamoDB::Table")
    granted = _granted(_role("AuditWatchFunction")[1])
    stream = repr({"Fn::GetAtt": [table_name, "StreamArn"]})
    on_dynamodb = {a: r for a, r in granted.items() if a.startswith("dynamodb:")}
    assert on_dynamodb == {f"dynamodb:{a}": {stream} for a in STREAM_ACTIONS}
    allowed = {
        _arn(_table_key()),
        _arn(_log_group("AuditWatchFunction")),
        _arn("FailedEventsQueue"),
        repr("*"),
    }
    for action, resources_ in granted.items():
        assert action.partition(":")[0] in ("dynamodb", "kms", "logs", "sqs", "xray"), action
        assert resources_ <= allowed | {stream}, f"{action} on {resources_}"
    assert not [a for a in granted if a.startswith("kms:") and _arn("PiiKey") in granted[a]]


# --- tracing and metrics settings --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_functions_are_traced_and_name_the_metrics_namespace_and_service(name: str) -> None:
    p = function_props(function(name))
    assert p.get("Tracing") == "Active", f"{name}: X-Ray active tracing"
    env = p["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    assert evaluate(env["POWERTOOLS_METRICS_NAMESPACE"]) == "Bloodbank/dev"
    granted = _granted(_role(name)[1])
    for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"):
        assert granted.get(action) == {repr("*")}, f"{name}: {action}"


def test_the_code_names_the_same_service_and_namespace_variable() -> None:
    assert observability.SERVICE == SERVICE
    assert observability.NAMESPACE_VARIABLE == "POWERTOOLS_METRICS_NAMESPACE"


# --- alarms ------------------------------------------------------------------------------------------------


def _alarms() -> dict[str, dict[str, Any]]:
    found = {n: props(a) for n, a in resources("AWS::CloudWatch::Alarm").items()}
    assert found, "the template has no alarm"
    return found


def _metrics_of(alarm: dict[str, Any]) -> list[tuple[Any, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of every metric the alarm reads."""
    if "MetricName" in alarm:
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return [(alarm["Namespace"], alarm["MetricName"], dimensions)]
    found = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dimensions))
    return found


def _alarms_on(namespace: Any, metric: str, **dimensions: Any) -> dict[str, dict[str, Any]]:
    return {
        n: a
        for n, a in _alarms().items()
        if any(ns == namespace and m == metric and d == dimensions for ns, m, d in _metrics_of(a))
    }


def _fires_on_one(alarm: dict[str, Any], period: int = 300) -> None:
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", alarm["AlarmName"]
    assert alarm["Threshold"] == 1, alarm["AlarmName"]
    assert alarm["EvaluationPeriods"] == 1, alarm["AlarmName"]
    assert alarm.get("Period", period) == period, alarm["AlarmName"]


def test_every_alarm_notifies_the_operations_topic_and_calls_missing_data_fine() -> None:
    for name, alarm in _alarms().items():
        assert alarm["AlarmActions"] == [{"Ref": ALARM_TOPIC}], name
        assert alarm.get("TreatMissingData") == "notBreaching", name
        assert alarm.get("ActionsEnabled", True) is True, name
        name_ = evaluate(alarm["AlarmName"])
        assert name_.startswith("bloodbank-dev-"), f"{name}: {name_}"
    names = [evaluate(a["AlarmName"]) for a in _alarms().values()]
    assert len(names) == len(set(names)), "alarm names must be unique"


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_mails_the_alarm_email() -> None:
    topic = props(template()["Resources"][ALARM_TOPIC])
    key_name = topic["KmsMasterKeyId"]["Ref"]
    key = template()["Resources"][key_name]
    assert key["Type"] == "AWS::KMS::Key", "alarms cannot publish to a topic under alias/aws/sns"
    statements = props(key)["KeyPolicy"]["Statement"]
    [for_cloudwatch] = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(listed(for_cloudwatch["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert is_ref(for_cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"], "AWS::AccountId")
    [policy] = [
        props(p)
        for p in resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": ALARM_TOPIC} in props(p)["Topics"]
    ]
    [publish] = policy["PolicyDocument"]["Statement"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert is_ref(publish["Condition"]["StringEquals"]["aws:SourceAccount"], "AWS::AccountId")

    parameter = template()["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == "", "the e-mail is optional"
    for good in ("", "ops@example.org"):
        assert re.fullmatch(parameter["AllowedPattern"], good), good
    assert not re.fullmatch(parameter["AllowedPattern"], "not an address")
    [(_, subscription)] = [
        (n, s)
        for n, s in resources("AWS::SNS::Subscription").items()
        if is_ref(props(s)["TopicArn"], ALARM_TOPIC)
    ]
    assert props(subscription)["Protocol"] == "email"
    assert is_ref(props(subscription)["Endpoint"], "AlarmEmail")
    assert subscription["Condition"] == "HasAlarmEmail"
    assert _condition("HasAlarmEmail") is False, "no subscription with the default (empty) e-mail"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_function_has_an_errors_alarm_and_a_throttles_alarm(name: str) -> None:
    for metric in ("Errors", "Throttles"):
        alarms = _alarms_on("AWS/Lambda", metric, FunctionName={"Ref": name})
        assert alarms, f"{name}: no {metric} alarm"
        for alarm in alarms.values():
            if "MetricName" in alarm:
                assert alarm["Statistic"] == "Sum"
                _fires_on_one(alarm)


def test_the_http_api_5xx_rate_and_the_tables_throttles_and_system_errors_are_alarmed() -> None:
    api_name, _ = only("AWS::Serverless::HttpApi")
    [api_alarm] = _alarms_on("AWS/ApiGateway", "5xx", ApiId={"Ref": api_name}).values()
    assert {m for _, m, _ in _metrics_of(api_alarm)} == {"5xx", "Count"}, "a rate: 5xx per request"
    table_name, table = only("AWS::DynamoDB::Table")
    indexes = [i["IndexName"] for i in props(table)["GlobalSecondaryIndexes"]]
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert _alarms_on("AWS/DynamoDB", metric, TableName={"Ref": table_name}), metric
        for index in indexes:
            assert _alarms_on(
                "AWS/DynamoDB", metric, TableName={"Ref": table_name}, GlobalSecondaryIndexName=index
            ), f"{metric} of {index}"
    [system_errors] = {
        n: a for n, a in _alarms().items() if any(m == "SystemErrors" for _, m, _ in _metrics_of(a))
    }.values()
    operations = {d["Operation"] for _, m, d in _metrics_of(system_errors) if m == "SystemErrors"}
    assert {"GetItem", "PutItem", "UpdateItem", "Query", "TransactWriteItems"} <= operations


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    queues = _dead_letter_queues()
    assert {"CampaignDeadLetterQueue", "FailedEventsQueue"} <= queues
    for queue in queues:
        alarms = _alarms_on(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName={"Fn::GetAtt": [queue, "QueueName"]}
        )
        assert len(alarms) == 1, f"{queue}: alarm on its depth"
        (alarm,) = alarms.values()
        assert alarm["Statistic"] == "Maximum"
        _fires_on_one(alarm)


def test_the_accounts_ses_reputation_is_alarmed() -> None:
    for metric, threshold in (("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)):
        [alarm] = _alarms_on("AWS/SES", metric).values()  # account level: no dimensions
        assert alarm["Threshold"] == threshold, metric
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", metric


def test_business_alarms_read_the_metrics_the_code_emits() -> None:
    custom = [(n, m, d) for n, a in _alarms().items() for ns, m, d in _metrics_of(a) if ns == NAMESPACE]
    assert custom
    for name, metric, dimensions in custom:
        assert metric in METRICS, f"{name}: the code emits no {metric} (bloodbank.observability.METRICS)"
        assert dimensions == {"service": SERVICE}, f"{name}: powertools' one dimension is service"
    for metric in ("StockRedAlerts", "AuditRecordsAltered"):
        [alarm] = _alarms_on(NAMESPACE, metric, service=SERVICE).values()
        assert alarm["Statistic"] == "Sum"
        _fires_on_one(alarm)
    [bounce_rate] = _alarms_on(NAMESPACE, "EmailsBounced", service=SERVICE).values()
    queries = {q["Id"]: q for q in bounce_rate["Metrics"]}
    [expression] = [q for q in queries.values() if q.get("ReturnData", True)]
    ids = {q["MetricStat"]["Metric"]["MetricName"]: i for i, q in queries.items() if "MetricStat" in q}
    assert set(ids) == {"EmailsBounced", "EmailsSent"}
    bounced, sent = ids["EmailsBounced"], ids["EmailsSent"]
    assert re.search(rf"(FILL\({bounced}, 0\)|{bounced}) / {sent}\b", expression["Expression"]), (
        "bounced / sent"
    )
    assert re.search(rf"IF\({ids['EmailsSent']} >= \d+,", expression["Expression"]), "a minimum of sends"
    assert bounce_rate["Threshold"] == 0.05
    assert bounce_rate["ComparisonOperator"] == "GreaterThanThreshold"


# --- the dashboard -----------------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    _, dashboard = only("AWS::CloudWatch::Dashboard")
    body = props(dashboard)["DashboardBody"]
    assert set(body) == {"Fn::Sub"}, "build the body with !Sub"
    parsed = json.loads(evaluate(body))  # every ${...} names a parameter, resource or pseudo parameter
    assert isinstance(parsed, dict)
    return parsed


def _dashboard_metrics() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for widget in _dashboard()["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            namespace, metric, *pairs = names
            found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def test_the_dashboard_shows_the_api_functions_table_queues_ses_and_business_metrics() -> None:
    shown = _dashboard_metrics()

    def has(namespace: str, metric: str, **dimensions: str) -> bool:
        return (namespace, metric, dimensions) in shown

    api_id = evaluate({"Ref": only("AWS::Serverless::HttpApi")[0]})
    for metric in ("Count", "5xx", "Latency"):
        assert has("AWS/ApiGateway", metric, ApiId=api_id), metric
    for name in FUNCTION_NAMES:
        for metric in ("Errors", "Throttles", "Duration"):
            assert has("AWS/Lambda", metric, FunctionName=evaluate({"Ref": name})), f"{name} {metric}"
    table = evaluate({"Ref": only("AWS::DynamoDB::Table")[0]})
    for metric in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents"):
        assert has("AWS/DynamoDB", metric, TableName=table), metric
    for queue in resources("AWS::SQS::Queue"):
        depth = evaluate({"Fn::Sub": f"${{{queue}.QueueName}}"})
        assert has("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=depth), queue
    for metric in ("Send", "Bounce", "Complaint"):
        assert has("AWS/SES", metric), metric
    for metric in METRICS:
        assert has("Bloodbank/dev", metric, service=SERVICE), metric
    assert not [m for ns, m, _ in shown if ns == "Bloodbank/dev" and m not in METRICS], (
        "a metric no code emits"
    )


# --- CloudFront --------------------------------------------------------------------------------------------


def _behaviour_for(distribution: dict[str, Any], path: str) -> dict[str, Any]:
    """The cache behaviour CloudFront picks for a path: the first whose pattern matches, else the default."""
    config = props(distribution)["DistributionConfig"]
    for behaviour in config.get("CacheBehaviors", []):
        if fnmatchcase(path, behaviour["PathPattern"]):  # CloudFront patterns: * and ?, case-sensitive
            return dict(behaviour)
    return dict(config["DefaultCacheBehavior"])


def test_cloudfront_serves_the_http_api_and_maps_graphql_realtime_onto_the_websocket_stage() -> None:
    _, distribution = only("AWS::CloudFront::Distribution")
    config = props(distribution)["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    api_name, _ = only("AWS::Serverless::HttpApi")
    ws_name, _ = only("AWS::ApiGatewayV2::Api")
    domains = {o["DomainName"]["Fn::Sub"]: i for i, o in origins.items()}
    http_origin = domains[f"${{{api_name}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"]
    ws_origin = domains[f"${{{ws_name}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"]
    for origin in origins.values():
        assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
        assert "OriginPath" not in origin, "API Gateway refuses paths longer than /<stage>; see below"

    for path in ("/graphql", "/health", "/unsubscribe/some-token"):
        behaviour = _behaviour_for(distribution, path)
        assert behaviour["TargetOriginId"] == http_origin, path
        assert set(behaviour["AllowedMethods"]) == ALL_METHODS, path
    realtime = _behaviour_for(distribution, "/graphql/realtime")
    assert realtime["TargetOriginId"] == ws_origin
    assert "GET" in realtime["AllowedMethods"], "the WebSocket handshake is a GET"
    for behaviour in (*config.get("CacheBehaviors", []), config["DefaultCacheBehavior"]):
        assert behaviour["ViewerProtocolPolicy"] == "https-only"
        assert behaviour["CachePolicyId"] == CACHING_DISABLED
        assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER

    # A WebSocket API takes connections on /<stage> only: the viewer-request function puts the stage's
    # path in place of /graphql/realtime (the query string stays).
    [association] = realtime["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    function_name, attribute = association["FunctionARN"]["Fn::GetAtt"]
    assert attribute == "FunctionMetadata.FunctionARN"
    cf_function = props(template()["Resources"][function_name])
    assert cf_function["AutoPublish"] is True
    [stage_name] = [
        n for n, s in resources("AWS::ApiGatewayV2::Stage").items() if is_ref(props(s)["ApiId"], ws_name)
    ]
    code = cf_function["FunctionCode"]["Fn::Sub"]
    assert re.search(rf'request\.uri = "/\$\{{{stage_name}\}}";', code), code
    assert "querystring" not in code, "Amplify's legacy handshake carries header and payload in the query"

    outputs = template()["Outputs"]
    distribution_name, _ = only("AWS::CloudFront::Distribution")
    assert outputs["ApiUrl"]["Value"] == {"Fn::Sub": f"https://${{{distribution_name}.DomainName}}/graphql"}
    assert outputs["ApiRealtimeUrl"]["Value"] == {
        "Fn::Sub": f"wss://${{{distribution_name}.DomainName}}/graphql/realtime"
    }


def test_the_realtime_path_is_the_one_the_local_server_serves() -> None:
    server = (ROOT / "bloodbank" / "server.py").read_text(encoding="utf-8")
    assert 'WebSocketRoute("/graphql/realtime"' in server, "CONTRACT.md: Amplify JS subscribes there"


# --- make deploy and samconfig.toml ------------------------------------------------------------------------


def _samconfig() -> dict[str, Any]:
    return tomllib.loads((INFRA / "samconfig.toml").read_text(encoding="utf-8"))


def test_samconfig_parameter_overrides_are_parameters_of_the_template_with_allowed_values() -> None:
    parameters = template()["Parameters"]
    config = _samconfig()
    assert {"default", "prod"} <= set(config)
    for section in ("default", "prod"):
        deploy = config[section]["deploy"]["parameters"]
        assert "CAPABILITY_IAM" in deploy["capabilities"]
        overrides = dict(o.split("=", 1) for o in deploy["parameter_overrides"].split())
        assert overrides["EnvironmentName"] == ("dev" if section == "default" else section)
        for key, value in overrides.items():
            assert key in parameters, f"[{section}] overrides {key}, which the template does not have"
            allowed = parameters[key].get("AllowedValues")
            assert allowed is None or value in [str(a) for a in allowed], f"[{section}] {key}={value}"
            pattern = parameters[key].get("AllowedPattern")
            assert pattern is None or re.fullmatch(pattern, value), f"[{section}] {key}={value}"


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("make") is None:  # pragma: no cover
        pytest.skip("make is not installed")
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_deploy_says_how_to_get_the_sam_cli_when_it_is_missing() -> None:
    result = _make("deploy", "SAM=/nonexistent/sam-cli-for-this-test")
    assert result.returncode != 0
    assert "infra/README.md" in result.stderr, result.stderr
    assert "Install the SAM CLI" in (INFRA / "README.md").read_text(encoding="utf-8")


def test_make_deploy_builds_then_deploys_the_chosen_section_with_extra_overrides(tmp_path: Path) -> None:
    """With a stand-in ``sam`` that prints its arguments (and no venv refresh: PY_STAMP= )."""
    sam = tmp_path / "sam"
    sam.write_text('#!/bin/sh\necho "sam $*"\n', encoding="utf-8")
    sam.chmod(0o755)
    result = _make("-s", "deploy", f"SAM={sam}", "PY_STAMP=", "ENV=prod", "ALARM_EMAIL=ops@example.org")
    assert result.returncode == 0, result.stderr
    prod = dict(
        o.split("=", 1) for o in _samconfig()["prod"]["deploy"]["parameters"]["parameter_overrides"].split()
    )
    build, deploy = result.stdout.splitlines()
    assert build == "sam build --config-env prod"
    command, _, overrides = deploy.partition(" --parameter-overrides ")
    assert command == "sam deploy --config-env prod"
    assert dict(o.split("=", 1) for o in overrides.split()) == {**prod, "AlarmEmail": "ops@example.org"}, (
        "the section's overrides stay, the new ones are added"
    )
    result = _make("-s", "deploy", f"SAM={sam}", "PY_STAMP=")  # ENV=dev: the [default] section as it is
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["sam build --config-env default", "sam deploy --config-env default"]


def test_the_lambda_package_is_compiled_to_bytecode() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    [recipe] = re.findall(r"^build-GraphQLFunction:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    install = next(line for line in recipe.splitlines() if "pip install" in line)
    assert "--compile" in install
    assert "--no-compile" not in install
