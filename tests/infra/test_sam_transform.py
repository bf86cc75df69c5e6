"""The SAM transform of ``infra/template.yaml`` succeeds offline, and what it makes is what we meant.

``samtranslator`` (aws-sam-translator, the library behind ``sam build``/``sam deploy`` and
CloudFormation's ``AWS::Serverless`` transform) turns the template into plain CloudFormation, as
CloudFormation will at deploy time. ``CodeUri`` is replaced by an S3 URI first, as ``sam package``
does. Errors the transform raises (a bad event, a property SAM does not know) fail here, not in a
deploy.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from tests.infra.test_template import FUNCTION_NAMES, _events, function_props, only, props, template

transform_module = pytest.importorskip(
    "samtranslator.translator.transform", reason="aws-sam-translator is not installed (a dev dependency)"
)


class ManagedPolicies:
    """Stands in for samtranslator's ManagedPolicyLoader (which asks IAM): the ARN of every AWS
    managed policy the template names by name. Function roles are this template's own, so it names
    none today; the transform then never needs one."""

    def __init__(self, source: dict[str, Any]) -> None:
        self.names = sorted(
            {
                policy
                for resource in source["Resources"].values()
                if resource["Type"] == "AWS::Serverless::Function"
                for policy in resource.get("Properties", {}).get("Policies", []) or []
                if isinstance(policy, str)
            }
        )

    def load(self) -> dict[str, str]:
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in self.names}


@cache
def transformed() -> dict[str, Any]:
    source = copy.deepcopy(template())
    for name, resource in source["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts-bucket/{name}.zip"  # as `sam package` does
    output = transform_module.transform(source, {}, ManagedPolicies(source))
    assert isinstance(output, dict)
    return output


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    """samtranslator reads the partition from the session's region; no AWS call is made."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")


def out(*types: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in transformed()["Resources"].items() if r["Type"] in types}


def _arn_of(name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [name, "Arn"]}


def test_the_transform_leaves_no_serverless_resource_and_no_transform() -> None:
    left = sorted(
        n for n, r in transformed()["Resources"].items() if r["Type"].startswith("AWS::Serverless::")
    )
    assert not left, left
    assert "Globals" not in transformed()
    assert not transformed().get("Transform")
    ours = {n for n, r in template()["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert set(out("AWS::IAM::Role")) == ours, "SAM made a role: every function names its own"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_becomes_a_lambda_function_with_its_role_tracing_and_settings(name: str) -> None:
    source = function_props(template()["Resources"][name])
    function = out("AWS::Lambda::Function")[name]["Properties"]
    assert function["Role"] == source["Role"]
    assert function["Handler"] == source["Handler"]
    assert function["Code"] == {"S3Bucket": "artifacts-bucket", "S3Key": f"{name}.zip"}
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Environment"]["Variables"] == source["Environment"]["Variables"], "Globals merged"


def _permissions(name: str, principal: str) -> list[dict[str, Any]]:
    return [
        props(p)
        for p in out("AWS::Lambda::Permission").values()
        if props(p)["FunctionName"] == {"Ref": name} and props(p)["Principal"] == principal
    ]


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_event_source_becomes_its_trigger_and_permission(name: str) -> None:
    for event_name, event in _events(name).items():
        p = event["Properties"]
        kind = event["Type"]
        where = f"{name}.{event_name}"
        if kind == "SNS":
            subscriptions = [
                props(s)
                for s in out("AWS::SNS::Subscription").values()
                if props(s)["Endpoint"] == _arn_of(name) and props(s)["TopicArn"] == p["Topic"]
            ]
            assert len(subscriptions) == 1, where
            assert subscriptions[0]["Protocol"] == "lambda"
            assert subscriptions[0].get("FilterPolicy") == p.get("FilterPolicy"), where
            assert [q["SourceArn"] for q in _permissions(name, "sns.amazonaws.com")] == [p["Topic"]], where
        elif kind == "Schedule":
            rules = [
                props(r)
                for r in out("AWS::Events::Rule").values()
                if any(t["Arn"] == _arn_of(name) for t in props(r)["Targets"])
            ]
            assert [r["ScheduleExpression"] for r in rules] == [p["Schedule"]], where
            assert _permissions(name, "events.amazonaws.com"), where
        elif kind == "S3":
            bucket_name = p["Bucket"]["Ref"]
            bucket = out("AWS::S3::Bucket")[bucket_name]
            configurations = [
                c
                for c in props(bucket)["NotificationConfiguration"]["LambdaConfigurations"]
                if c["Function"] == _arn_of(name)
            ]
            assert [(c["Event"], c.get("Filter")) for c in configurations] == [(p["Events"], p.get("Filter"))]
            assert _permissions(name, "s3.amazonaws.com"), where
            assert {f"{name}{event_name}Permission"} <= set(bucket.get("DependsOn", [])), (
                "S3 checks the permission when the notification is set"
            )
        elif kind in ("SQS", "DynamoDB"):
            source_arn = p["Queue"] if kind == "SQS" else p["Stream"]
            mappings = [
                props(m)
                for m in out("AWS::Lambda::EventSourceMapping").values()
                if props(m)["FunctionName"] == {"Ref": name} and props(m)["EventSourceArn"] == source_arn
            ]
            assert len(mappings) == 1, where
            (mapping,) = mappings
            for key in ("BatchSize", "FilterCriteria", "BisectBatchOnFunctionError", "MaximumRetryAttempts"):
                assert mapping.get(key) == p.get(key), f"{where}: {key}"
            if "DestinationConfig" in p:
                assert mapping["DestinationConfig"] == {
                    "OnFailure": {"Destination": p["DestinationConfig"]["OnFailure"]["Destination"]}
                }, where
        elif kind == "HttpApi":
            api = out("AWS::ApiGatewayV2::Api")[p["ApiId"]["Ref"]]
            assert p["Method"].lower() in props(api)["Body"]["paths"][p["Path"]], where
            assert _permissions(name, "apigateway.amazonaws.com"), where
        else:  # pragma: no cover - a new kind of trigger: say here what SAM makes of it
            raise AssertionError(f"{where}: check what SAM makes of a {kind} event")


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_failure_destinations_become_event_invoke_configs(name: str) -> None:
    source = function_props(template()["Resources"][name]).get("EventInvokeConfig")
    configs = [
        props(c)
        for c in out("AWS::Lambda::EventInvokeConfig").values()
        if props(c)["FunctionName"] == {"Ref": name}
    ]
    if source is None:
        assert not configs, name
        return
    [config] = configs
    assert config["Qualifier"] == "$LATEST"
    assert config["MaximumRetryAttempts"] == source["MaximumRetryAttempts"]
    assert config["DestinationConfig"]["OnFailure"] == {
        "Destination": source["DestinationConfig"]["OnFailure"]["Destination"]
    }


def test_the_http_api_becomes_an_api_with_a_default_stage_its_routes_throttling_and_access_logs() -> None:
    api_name, _ = only("AWS::Serverless::HttpApi")
    api = props(out("AWS::ApiGatewayV2::Api")[api_name])
    paths = api["Body"]["paths"]
    assert {"/graphql", "/health", "/unsubscribe/{token}"} <= set(paths)
    assert "x-amazon-apigateway-cors" in api["Body"]
    [stage] = [
        props(s) for s in out("AWS::ApiGatewayV2::Stage").values() if props(s)["ApiId"] == {"Ref": api_name}
    ]
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert "AccessLogSettings" in stage
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
