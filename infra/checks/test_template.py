"""What the issue asks of the template, checked on the SAM source and on its CloudFormation translation."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from conftest import REPO

FUNCTIONS = {
    "WebhookIntakeFunction": "webhook-intake",
    "TransformFunction": "transform",
    "ErpPostFunction": "erp-post",
    "PayoutReconciliationFunction": "payout-reconciliation",
    "ErpSyncFunction": "erp-sync",
}


def _target(value):
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".")[0]
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], list):
            # An ARN built from one parameter (the SSM parameter ARNs): that parameter.
            refs = re.findall(r"'Ref': '(\w+)'", str(value["Fn::Sub"][1]))
            return refs[0] if len(refs) == 1 else None
    return None


def _as_list(x):
    return x if isinstance(x, list) else [x]


def _function(cfn, value):
    """The function a reference names: itself, or the function behind its `live` alias."""
    lid = _target(value)
    res = cfn["Resources"].get(lid, {})
    if res.get("Type") == "AWS::Lambda::Alias":
        return _target(res["Properties"]["FunctionName"])
    return lid


def test_globals_and_build_metadata(sam):
    g = sam["Globals"]["Function"]
    assert g["Runtime"] == "provided.al2023"
    assert g["Architectures"] == ["arm64"]
    assert g["Handler"] == "bootstrap"
    fns = {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(fns) == set(FUNCTIONS)
    for lid, res in fns.items():
        md = res["Metadata"]
        assert md["BuildMethod"] == "rust-cargolambda", lid
        assert md["BuildProperties"]["Binary"] == FUNCTIONS[lid], lid
        assert res["Properties"]["CodeUri"] == f"../functions/{FUNCTIONS[lid]}", lid


@pytest.mark.parametrize("lid", sorted(FUNCTIONS))
def test_code_uri_is_the_crate_that_builds_the_binary(sam, lid):
    crate = REPO / "functions" / FUNCTIONS[lid]
    if not (crate / "Cargo.toml").exists():
        pytest.skip(f"functions/{FUNCTIONS[lid]} is not in the workspace yet")
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    bins = {b.get("name") for b in manifest.get("bin", [])} or {manifest["package"]["name"]}
    assert FUNCTIONS[lid] in bins, f"{crate}/Cargo.toml builds {bins}, the template expects {FUNCTIONS[lid]}"


def test_translated_functions(cfn):
    fns = {k: v["Properties"] for k, v in cfn["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
    assert set(fns) == set(FUNCTIONS)
    for lid, p in fns.items():
        assert p["Runtime"] == "provided.al2023" and p["Handler"] == "bootstrap", lid
        assert p["Architectures"] == ["arm64"], lid
        assert "FunctionName" not in p, lid
        assert p.get("LoggingConfig", {}).get("LogFormat") == "JSON", lid


def test_http_api_routes_reach_intake(cfn):
    """Stripe webhooks and ERP events: two POST routes, both on webhook-intake (which dispatches on the path)."""
    apis = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert len(apis) == 1
    paths = apis[0]["Properties"]["Body"]["paths"]
    assert sorted(paths) == ["/erp/customers", "/webhook"]
    for path in paths:
        assert list(paths[path]) == ["post"], path
        integration = paths[path]["post"]["x-amazon-apigateway-integration"]
        assert integration["payloadFormatVersion"] == "2.0", path
        # Through the `live` alias, so a canary deployment shifts webhook traffic too.
        assert "${WebhookIntakeFunctionAliaslive}" in str(integration["uri"]), path


def test_erp_route_is_configured_on_intake_and_consumed_by_erp_sync(cfn):
    env = cfn["Resources"]["WebhookIntakeFunction"]["Properties"]["Environment"]["Variables"]
    assert env["LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL"] == {"Ref": "ErpEventsQueue"}
    assert env["LEDGERBRIDGE_ERP_EVENT_SECRET_ID"] == {"Ref": "ErpEventSigningSecret"}
    (source,) = [
        r["Properties"]
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and _function(cfn, r["Properties"]["FunctionName"]) == "ErpSyncFunction"
    ]
    assert _target(source["EventSourceArn"]) == "ErpEventsQueue"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A standard queue (see the template's comment): the sender's SqsQueue sets no message group on it.
    assert "FifoQueue" not in cfn["Resources"]["ErpEventsQueue"]["Properties"]
    # The signing secret starts as an empty list: every ERP call is refused until it is set.
    assert cfn["Resources"]["ErpEventSigningSecret"]["Properties"]["SecretString"] == "[]"


def test_schedules_use_their_parameters(cfn):
    rules = {
        r["Properties"]["ScheduleExpression"]["Ref"]: _function(cfn, r["Properties"]["Targets"][0]["Arn"])
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    }
    # The payout sweep, and the ERP poll in erp-post (the function that reaches the ERP).
    assert rules == {
        "ReconciliationSchedule": "PayoutReconciliationFunction",
        "ErpPollSchedule": "ErpPostFunction",
    }


def test_parameters(sam):
    p = sam["Parameters"]
    assert p["Stage"]["Type"] == "String"
    assert sorted(p["ErpKind"]["AllowedValues"]) == ["epicor", "sage500", "sagepro"]
    assert p["ErpMaxConcurrency"]["MinValue"] == 2 and p["ErpMaxConcurrency"]["MaxValue"] <= 1000
    assert p["ReconciliationSchedule"]["Default"] == "rate(1 hour)"
    assert p["ErpPollSchedule"]["Default"] == "rate(5 minutes)"
    assert re.fullmatch(p["ErpPollSchedule"]["AllowedPattern"], "rate(5 minutes)")
    assert re.fullmatch(p["ReconciliationSchedule"]["AllowedPattern"], "rate(1 hour)")
    assert re.fullmatch(p["ReconciliationSchedule"]["AllowedPattern"], "cron(15 * * * ? *)")
    assert not re.fullmatch(p["ReconciliationSchedule"]["AllowedPattern"], "every hour")
    assert re.fullmatch(p["Stage"]["AllowedPattern"], "pr-123")
    for optional in ("ErpSubnetIds", "ErpSecurityGroupIds", "AlarmTopicArn"):
        assert p[optional]["Default"] == "", optional
    assert re.fullmatch(p["AlarmTopicArn"]["AllowedPattern"], "")


def test_outputs(sam):
    out = sam["Outputs"]
    assert out["WebhookUrl"]["Value"]["Fn::Sub"].endswith("/webhook")
    assert out["ErpEventsUrl"]["Value"]["Fn::Sub"].endswith("/erp/customers")
    for key in ("EventsQueueUrl", "CommandsQueueUrl", "ReconciliationQueueUrl", "ErpEventsQueueUrl", "ParkedQueueUrl",
                "StateTableName", "ErpEventSigningSecretArn"):
        assert key in out, key


def test_vpc_is_optional_and_grants_network_permissions_only_when_used(cfn):
    p = cfn["Resources"]["ErpPostFunction"]["Properties"]
    assert p["VpcConfig"]["Fn::If"][0] == "UseVpc"
    assert p["VpcConfig"]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    role = cfn["Resources"]["ErpPostRole"]["Properties"]
    with_vpc, without = role["ManagedPolicyArns"]["Fn::If"][1:]
    assert "VPCAccess" in str(with_vpc) and "VPCAccess" not in str(without)
    assert cfn["Conditions"]["UseVpc"]


# ------------------------------------------------------------------ least privilege


def _role_of(cfn, fid):
    return _target(cfn["Resources"][fid]["Properties"]["Role"])


def _statements(cfn, fid):
    role = cfn["Resources"][_role_of(cfn, fid)]["Properties"]
    for pol in role.get("Policies", []):
        for st in _as_list(pol["PolicyDocument"]["Statement"]):
            # A statement granted only when a parameter is set: `!If [Cond, statement, !Ref AWS::NoValue]`.
            if "Fn::If" in st:
                _, granted, otherwise = st["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}, st
                st = granted
            yield st


def _env_targets(cfn, fid, suffix):
    env = cfn["Resources"][fid]["Properties"].get("Environment", {}).get("Variables", {})
    return {_target(v) for k, v in env.items() if k.endswith(suffix) and _target(v)}


def _resources_for(cfn, fid, action):
    out = set()
    for st in _statements(cfn, fid):
        if action in _as_list(st["Action"]):
            out |= {_target(r) for r in _as_list(st["Resource"])}
    return out


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_no_wildcards_in_inline_policies(cfn, fid):
    for st in _statements(cfn, fid):
        assert st.get("Effect") in ("Allow", "Deny")
        for a in _as_list(st["Action"]):
            assert a != "*" and not a.endswith(":*"), f"{fid}: wildcard action {a}"
        for r in _as_list(st["Resource"]):
            assert r != "*" and _target(r), f"{fid}: resource {r} is not a resource of this stack"


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_permissions_match_what_the_function_is_configured_to_use(cfn, fid):
    """Each permission is for a resource the function's environment names, and each named resource is permitted."""
    secrets = _env_targets(cfn, fid, "_SECRET_ID")
    assert _resources_for(cfn, fid, "secretsmanager:GetSecretValue") == secrets

    sends = _env_targets(cfn, fid, "_QUEUE_URL")
    assert _resources_for(cfn, fid, "sqs:SendMessage") == sends

    parameters = _env_targets(cfn, fid, "_PARAMETER")
    assert _resources_for(cfn, fid, "ssm:GetParameter") == parameters

    tables = _env_targets(cfn, fid, "_TABLE")
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert _resources_for(cfn, fid, action) == tables, action
    granted = {a for st in _statements(cfn, fid) for a in _as_list(st["Action"]) if a.startswith("dynamodb:")}
    assert granted <= {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}

    consumed = {
        _target(r["Properties"]["EventSourceArn"])
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and _function(cfn, r["Properties"]["FunctionName"]) == fid
    }
    assert _resources_for(cfn, fid, "sqs:ReceiveMessage") == consumed
    assert _resources_for(cfn, fid, "sqs:DeleteMessage") == consumed


# AWSXrayWriteOnlyAccess: X-Ray has no resource-level permissions; SAM attaches it for `Tracing: Active`.
ALLOWED_MANAGED = ("service-role/AWSLambdaBasicExecutionRole", "service-role/AWSLambdaVPCAccessExecutionRole",
                   "policy/AWSXrayWriteOnlyAccess")


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_only_logging_and_vpc_managed_policies(cfn, fid):
    """AWS managed policies grant on `*`; only the logging (and, in a VPC, the ENI) ones are acceptable."""
    arns = cfn["Resources"][_role_of(cfn, fid)]["Properties"].get("ManagedPolicyArns", [])
    if isinstance(arns, dict) and "Fn::If" in arns:
        arns = arns["Fn::If"][1] + arns["Fn::If"][2]
    for arn in arns:
        text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
        assert text.endswith(ALLOWED_MANAGED), f"{fid}: managed policy {text}"


def test_each_function_has_its_own_role(cfn):
    roles = [_role_of(cfn, fid) for fid in FUNCTIONS]
    assert len(set(roles)) == len(roles)


def test_dashboard_is_valid_json_and_shows_every_queue_and_function(cfn):
    body, variables = cfn["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([A-Za-z0-9:]+)\}", body))
    text = body
    for n in names:
        text = text.replace("${" + n + "}", f"<{n}>")
    dashboard = json.loads(text)
    assert dashboard["widgets"]
    queues = {k for k, v in cfn["Resources"].items() if v["Type"] == "AWS::SQS::Queue"}
    shown_queues = {_target(v) for v in variables.values()} - {None}
    assert shown_queues == queues
    for fid in FUNCTIONS:
        assert fid in names, f"{fid} missing from the dashboard"
    assert names <= set(variables) | set(cfn["Resources"]) | set(cfn["Parameters"]) | {"AWS::Region"}


def test_stripe_event_bus_path_is_optional_and_wraps_events_for_transform(cfn):
    rule = cfn["Resources"]["StripeEventBusRule"]
    assert rule["Condition"] == "UseStripeEventBus"
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": "StripeEventBusName"}
    assert props["EventPattern"] == {"source": [{"prefix": "aws.partner/stripe.com"}]}
    target = props["Targets"][0]
    assert target["Arn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    # The template produces the intake's versioned message, so transform reads both paths alike.
    template = target["InputTransformer"]["InputTemplate"]
    assert '"type": "stripe_event.v1"' in template and '"event": <detail>' in template
    policy = cfn["Resources"]["StripeEventBusQueuePolicy"]
    assert policy["Condition"] == "UseStripeEventBus"
    statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["StripeEventBusRule", "Arn"]}


# ------------------------------------------------------------------ state table: who may touch what


def test_transform_has_no_state_table_access(cfn):
    """transform keeps no state: neither the table's name nor any DynamoDB permission."""
    env = cfn["Resources"]["TransformFunction"]["Properties"]["Environment"]["Variables"]
    assert "LEDGERBRIDGE_STATE_TABLE" not in env
    assert not [a for st in _statements(cfn, "TransformFunction") for a in _as_list(st["Action"]) if a.startswith("dynamodb:")]


@pytest.mark.parametrize("fid", sorted(set(FUNCTIONS) - {"TransformFunction"}))
def test_cross_references_can_never_be_deleted(cfn, fid):
    """DeleteItem is allowed on idempotency records (idem#...) only, and denied outright on cross-references (xref#...),
    which are what keeps a document from being created twice: they are only ever written conditionally."""
    allows = [st for st in _statements(cfn, fid) if "dynamodb:DeleteItem" in _as_list(st["Action"]) and st["Effect"] == "Allow"]
    assert allows, f"{fid}: releasing an idempotency record needs DeleteItem"
    for st in allows:
        assert _as_list(st["Action"]) == ["dynamodb:DeleteItem"], f"{fid}: DeleteItem shares a statement with {st['Action']}"
        keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        assert keys == ["idem#*"], f"{fid}: DeleteItem is not limited to idempotency records: {st.get('Condition')}"
    denies = [st for st in _statements(cfn, fid) if st["Effect"] == "Deny" and "dynamodb:DeleteItem" in _as_list(st["Action"])]
    assert any(
        st.get("Condition", {}).get("ForAnyValue:StringLike", {}).get("dynamodb:LeadingKeys") == ["xref#*"]
        and _target(st["Resource"]) == "StateTable"
        for st in denies
    ), f"{fid}: no explicit Deny of DeleteItem on cross-references"


def test_key_prefixes_in_the_policies_are_the_ones_the_code_uses():
    """The IAM conditions name the partition key prefixes of shared/core/src/keys.rs (module `table`)."""
    keys = (REPO / "shared" / "core" / "src" / "keys.rs").read_text()
    assert 'format!("idem#{key}")' in keys
    assert 'format!("xref#{stripe_id}#{doc_kind}")' in keys


# ------------------------------------------------------------------ tracing and safe deployments


def test_tracing_is_active_everywhere(sam, cfn):
    assert sam["Globals"]["Function"]["Tracing"] == "Active"
    for fid in FUNCTIONS:
        assert cfn["Resources"][fid]["Properties"]["TracingConfig"] == {"Mode": "Active"}, fid


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_every_function_deploys_as_a_canary_that_its_alarms_roll_back(sam, cfn, fid):
    assert sam["Globals"]["Function"]["AutoPublishAlias"] == "live"
    pref = sam["Resources"][fid]["Properties"]["DeploymentPreference"]
    assert pref["Type"] == {"Ref": "DeploymentType"}
    assert sam["Parameters"]["DeploymentType"]["Default"].startswith("Canary")
    alarms = {a["Ref"] for a in pref["Alarms"]}
    errors_alarm = {
        lid for lid, r in cfn["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "Errors"
        and any(_target(d["Value"]) == fid for d in r["Properties"].get("Dimensions", []))
    }
    assert errors_alarm and errors_alarm <= alarms, f"{fid}: its Errors alarm does not stop its deployment"
    for a in alarms:
        assert cfn["Resources"][a]["Type"] == "AWS::CloudWatch::Alarm", a
    (group,) = [r["Properties"] for lid, r in cfn["Resources"].items()
                if r["Type"] == "AWS::CodeDeploy::DeploymentGroup" and lid == f"{fid}DeploymentGroup"]
    assert {_target(a["Name"]) for a in group["AlarmConfiguration"]["Alarms"]} == alarms
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    # Every invocation path goes through the alias: event sources, schedules and the HTTP API.
    for r in cfn["Resources"].values():
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            assert cfn["Resources"][_target(r["Properties"]["FunctionName"])]["Type"] == "AWS::Lambda::Alias"
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]:
            assert cfn["Resources"][_target(r["Properties"]["Targets"][0]["Arn"])]["Type"] == "AWS::Lambda::Alias"


def test_webhook_rejection_rate_is_alarmed(cfn):
    """A wrong or unset signing secret answers every Stripe delivery 400: the 4xx share of requests pages someone."""
    props = cfn["Resources"]["WebhookRejectedRateAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert stats == {"rejected": "4xx", "requests": "Count"}
    (expr,) = [m["Expression"] for m in props["Metrics"] if m.get("ReturnData")]
    assert "rejected" in expr and "requests" in expr
    assert props["Threshold"] == {"Ref": "WebhookRejectedPercentAlarm"}
    assert "AlarmActions" in props


def test_deployment_stops_without_a_mapping_or_reconciliation_configuration(sam, cfn):
    """Neither inline nor an SSM parameter would mean the examples' placeholder accounts: a CloudFormation rule
    refuses the deployment (and the functions refuse to start, see shared/core/src/config.rs); both at once is
    refused too. (Updated for the SSM parameters: the rule used to require the inline value.)"""
    for rule, inline, param in (("MappingIsSet", "Mapping", "MappingParameter"),
                                ("ReconciliationConfigIsSet", "ReconciliationConfig", "ReconciliationConfigParameter")):
        for doc in (sam, cfn):
            one, not_both = doc["Rules"][rule]["Assertions"]
            assert one["Assert"] == {"Fn::Or": [{"Fn::Not": [{"Fn::Equals": [{"Ref": inline}, ""]}]},
                                                {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}]}, rule
            assert not_both["Assert"] == {"Fn::Or": [{"Fn::Equals": [{"Ref": inline}, ""]},
                                                     {"Fn::Equals": [{"Ref": param}, ""]}]}, rule
            assert len(one["AssertDescription"]) > 40 and not_both["AssertDescription"]
    env = {fid: cfn["Resources"][fid]["Properties"]["Environment"]["Variables"] for fid in FUNCTIONS}
    assert env["TransformFunction"]["LEDGERBRIDGE_MAPPING"] == {"Ref": "Mapping"}
    assert env["ErpPostFunction"]["LEDGERBRIDGE_MAPPING"] == {"Ref": "Mapping"}
    assert env["PayoutReconciliationFunction"]["LEDGERBRIDGE_RECONCILIATION_CONFIG"] == {"Ref": "ReconciliationConfig"}
    assert env["TransformFunction"]["LEDGERBRIDGE_MAPPING_PARAMETER"] == {"Ref": "MappingParameter"}
    assert env["ErpPostFunction"]["LEDGERBRIDGE_MAPPING_PARAMETER"] == {"Ref": "MappingParameter"}
    assert env["PayoutReconciliationFunction"]["LEDGERBRIDGE_RECONCILIATION_PARAMETER"] == {
        "Ref": "ReconciliationConfigParameter"}
    for fid, variables in env.items():
        assert "LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG" not in variables, fid
    assert "LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG" not in str(sam["Globals"])


# ------------------------------------------------------------------ configuration from SSM Parameter Store

CONFIG_READERS = {
    "TransformFunction": ("MappingParameter", "HasMappingParameter"),
    "ErpPostFunction": ("MappingParameter", "HasMappingParameter"),
    "PayoutReconciliationFunction": ("ReconciliationConfigParameter", "HasReconciliationParameter"),
}


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_configuration_parameters_are_readable_by_exactly_their_functions(cfn, fid):
    """ssm:GetParameter only on the parameter the function's environment names, only when it is set, on its ARN
    without the pinned version; kms:Decrypt only on the configured key and only through SSM."""
    role = cfn["Resources"][_role_of(cfn, fid)]["Properties"]
    raw = [st for pol in role.get("Policies", []) for st in _as_list(pol["PolicyDocument"]["Statement"])]
    ssm = [st for st in raw if "ssm:" in str(st)]
    kms = [st for st in raw if "kms:" in str(st)]
    if fid not in CONFIG_READERS:
        assert not ssm and not kms, fid
        return
    param, condition = CONFIG_READERS[fid]
    (ssm,) = ssm
    cond, st, otherwise = ssm["Fn::If"]
    assert cond == condition and otherwise == {"Ref": "AWS::NoValue"}
    assert st["Action"] == "ssm:GetParameter"
    template, names = st["Resource"]["Fn::Sub"]
    assert template == "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}"
    assert names == {"Name": {"Fn::Select": [0, {"Fn::Split": [":", {"Ref": param}]}]}}
    (kms,) = kms
    cond, st, otherwise = kms["Fn::If"]
    assert cond == "HasConfigKmsKey" and otherwise == {"Ref": "AWS::NoValue"}
    assert st["Action"] == "kms:Decrypt" and st["Resource"] == {"Ref": "ConfigParameterKmsKeyArn"}
    assert st["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}}}
    assert cfn["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}


def test_configuration_parameter_names_and_time_zone(sam, cfn):
    p = sam["Parameters"]
    for name in ("MappingParameter", "ReconciliationConfigParameter"):
        pattern = p[name]["AllowedPattern"]
        for ok in ("", "/ledgerbridge/prod/mapping", "/ledgerbridge/prod/mapping:12"):
            assert re.fullmatch(pattern, ok), (name, ok)
        # No leading slash (the ARN would be wrong), a label instead of a version, version 0.
        for bad in ("ledgerbridge/mapping", "/ledgerbridge/mapping:live", "/m:0", "/m:1:2"):
            assert not re.fullmatch(pattern, bad), (name, bad)
    assert re.fullmatch(p["ConfigParameterKmsKeyArn"]["AllowedPattern"],
                        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert p["CompanyTimeZone"]["Default"] == "UTC"
    assert re.fullmatch(p["CompanyTimeZone"]["AllowedPattern"], "America/Argentina/Buenos_Aires")
    for fid in ("TransformFunction", "ErpPostFunction", "PayoutReconciliationFunction"):
        env = cfn["Resources"][fid]["Properties"]["Environment"]["Variables"]
        assert env["LEDGERBRIDGE_TIME_ZONE"] == {"Ref": "CompanyTimeZone"}, fid
