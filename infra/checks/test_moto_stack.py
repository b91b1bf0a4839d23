"""Create the translated stack in moto's CloudFormation and check the deployed queues, table and wiring.

The hand-off file build/infra/stack-resources.json (format in infra/README.md) describes the deployed
resources; end-to-end tests that bring their own moto server produce the same file with moto_stack.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import moto_stack
from conftest import HERE

PARAMETERS = {
    "Stage": "ci",
    "ErpKind": "sage500",
    "ErpMaxConcurrency": "3",
    "ReconciliationSchedule": "rate(15 minutes)",
    "ErpPollSchedule": "rate(10 minutes)",
}
WEBHOOK_SECRETS = '["whsec_ci_new", "whsec_ci_old"]'
ERP_EVENT_SECRETS = '["lbsec_ci_new", "lbsec_ci_old"]'


@pytest.fixture(scope="module")
def stack(moto_endpoint, cfn, build_dir):
    name = f"ledgerbridge-ci-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    handoff = moto_stack.deploy(
        moto_endpoint,
        cfn,
        name,
        PARAMETERS,
        secret_values={"WebhookSigningSecret": WEBHOOK_SECRETS, "ErpEventSigningSecret": ERP_EVENT_SECRETS},
    )
    handoff["deploy_seconds"] = round(time.monotonic() - started, 2)
    (build_dir / "stack-resources.json").write_text(json.dumps(handoff, indent=2) + "\n")
    return handoff


@pytest.fixture(scope="module")
def aws(moto_endpoint):
    return lambda service: moto_stack.client(service, moto_endpoint)


def test_stack_is_created(stack, aws):
    assert stack["stack_status"] == "CREATE_COMPLETE"
    events = aws("cloudformation").describe_stack_events(StackName=stack["stack_name"])["StackEvents"]
    assert not [e for e in events if "FAILED" in e.get("ResourceStatus", "")]


def test_every_queue_table_and_function_of_the_template_exists(stack, cfn, aws):
    summaries = aws("cloudformation").list_stack_resources(StackName=stack["stack_name"])["StackResourceSummaries"]
    created = {s["LogicalResourceId"]: s["ResourceType"] for s in summaries if s["LogicalResourceId"]}
    # moto cannot create versions, aliases and CodeDeploy (see moto_stack.for_moto); everything else must exist.
    for lid, res in moto_stack.for_moto(cfn)["Resources"].items():
        # Conditional resources (the optional Stripe event bus path) are not created with the defaults.
        if res.get("Condition") == "UseStripeEventBus":
            continue
        if res["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Lambda::Function",
                           "AWS::Lambda::EventSourceMapping", "AWS::Events::Rule", "AWS::IAM::Role"):
            assert created.get(lid) == res["Type"], f"{lid} was not created"


def test_outputs_name_the_same_resources(stack):
    out = stack["outputs"]
    q = stack["queues"]
    assert out["EventsQueueUrl"] == q["events"]["url"]
    assert out["CommandsQueueUrl"] == q["commands"]["url"]
    assert out["CommandsDeadLetterQueueUrl"] == q["commands"]["dlq_url"]
    assert out["ReconciliationQueueUrl"] == q["reconciliation"]["url"]
    assert out["ParkedQueueUrl"] == q["parked"]["url"]
    assert out["ErpEventsQueueUrl"] == q["erp_events"]["url"]
    assert out["ErpEventsDeadLetterQueueUrl"] == q["erp_events"]["dlq_url"]
    assert out["StateTableName"] == stack["tables"]["state"]
    assert out["WebhookUrl"].endswith("/webhook")


def test_deployed_queue_settings_follow_the_template(stack, aws):
    sqs = aws("sqs")
    fns = stack["functions"]
    consumers = {
        "events": "transform",
        "commands": "erp-post",
        "reconciliation": "payout-reconciliation",
        "erp_events": "erp-sync",
    }
    for role, fn in consumers.items():
        q = stack["queues"][role]
        assert q["visibility_timeout"] >= 6 * fns[fn]["timeout"], role
        assert q["max_receive_count"] >= 5, role
        attrs = sqs.get_queue_attributes(QueueUrl=q["url"], AttributeNames=["All"])["Attributes"]
        assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == q["dlq_arn"], role
        dlq = sqs.get_queue_attributes(QueueUrl=q["dlq_url"], AttributeNames=["MessageRetentionPeriod"])["Attributes"]
        assert int(dlq["MessageRetentionPeriod"]) > q["retention_seconds"], role
        assert attrs.get("SqsManagedSseEnabled") == "true", role
        assert [s["queue_arn"] for s in fns[fn]["event_sources"]] == [q["arn"]], role


def test_function_environment_names_the_stack_resources(stack):
    q, fns = stack["queues"], stack["functions"]
    table = stack["tables"]["state"]
    intake = fns["webhook-intake"]["environment"]
    assert intake["LEDGERBRIDGE_EVENTS_QUEUE_URL"] == q["events"]["url"]
    assert intake["LEDGERBRIDGE_WEBHOOK_SECRET_ID"] == stack["secrets"]["webhook_signing"]
    assert intake["LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL"] == q["erp_events"]["url"]
    assert intake["LEDGERBRIDGE_ERP_EVENT_SECRET_ID"] == stack["secrets"]["erp_event_signing"]
    sync = fns["erp-sync"]["environment"]
    assert sync["LEDGERBRIDGE_PARKED_QUEUE_URL"] == q["parked"]["url"]
    transform = fns["transform"]["environment"]
    assert transform["LEDGERBRIDGE_COMMANDS_QUEUE_URL"] == q["commands"]["url"]
    assert transform["LEDGERBRIDGE_RECONCILIATION_QUEUE_URL"] == q["reconciliation"]["url"]
    erp = fns["erp-post"]["environment"]
    assert erp["LEDGERBRIDGE_ERP_KIND"] == PARAMETERS["ErpKind"]
    assert erp["LEDGERBRIDGE_PARKED_QUEUE_URL"] == q["parked"]["url"]
    assert erp["LEDGERBRIDGE_ERP_SECRET_ID"] == stack["secrets"]["erp_credentials"]
    recon = fns["payout-reconciliation"]["environment"]
    assert recon["LEDGERBRIDGE_COMMANDS_QUEUE_URL"] == q["commands"]["url"]
    # The company time zone reaches every function that books (CompanyTimeZone's default).
    for name in ("transform", "erp-post", "payout-reconciliation"):
        assert fns[name]["environment"]["LEDGERBRIDGE_TIME_ZONE"] == "UTC", name
    # transform keeps no state: it is not given the table (and its role has no access to it).
    assert "LEDGERBRIDGE_STATE_TABLE" not in transform
    for name, fn in fns.items():
        if name != "transform":
            assert fn["environment"]["LEDGERBRIDGE_STATE_TABLE"] == table, name
        assert fn["environment"]["LEDGERBRIDGE_STAGE"] == PARAMETERS["Stage"]
        for var, value in fn["environment"].items():
            if var.endswith("_STRIPE_API_KEY_SECRET_ID"):
                assert value == stack["secrets"]["stripe_api_key"]


def test_event_source_settings(stack):
    fns = stack["functions"]
    for fn in ("transform", "erp-post", "payout-reconciliation", "erp-sync"):
        for src in fns[fn]["event_sources"]:
            assert src["function_response_types"] == ["ReportBatchItemFailures"], fn
    (erp_src,) = fns["erp-post"]["event_sources"]
    assert erp_src["maximum_concurrency"] == int(PARAMETERS["ErpMaxConcurrency"])
    assert fns["webhook-intake"]["event_sources"] == []


def test_schedule_follows_the_parameter(stack):
    schedules = sorted(r["schedule"] for r in stack["schedules"].values())
    assert schedules == sorted([PARAMETERS["ReconciliationSchedule"], PARAMETERS["ErpPollSchedule"]])
    assert all(r["state"] == "ENABLED" for r in stack["schedules"].values())


def test_every_queue_carries_messages(stack, aws):
    """Send and receive on every queue through the URL the functions are configured with."""
    sqs = aws("sqs")
    urls = [v for q in stack["queues"].values() for k, v in q.items() if k in ("url", "dlq_url")]
    assert len(urls) == 9
    for url in urls:
        body = json.dumps({"probe": url})
        sqs.send_message(QueueUrl=url, MessageBody=body)
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1, AttributeNames=["All"])
        (m,) = msgs["Messages"]
        assert m["Body"] == body
        # Event source mappings are disabled by the hand-off, so nothing else received it.
        assert m["Attributes"]["ApproximateReceiveCount"] == "1", url
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_redrive_moves_a_poison_message_to_the_dead_letter_queue(stack, aws):
    sqs = aws("sqs")
    q = stack["queues"]["events"]
    sqs.send_message(QueueUrl=q["url"], MessageBody="poison")
    receives = 0
    for _ in range(q["max_receive_count"] + 2):
        got = sqs.receive_message(QueueUrl=q["url"], VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        receives += 1
    assert receives == q["max_receive_count"]
    dead = sqs.receive_message(QueueUrl=q["dlq_url"], WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]
    sqs.delete_message(QueueUrl=q["dlq_url"], ReceiptHandle=dead[0]["ReceiptHandle"])


def test_state_table_works(stack, aws):
    ddb = aws("dynamodb")
    table = stack["tables"]["state"]
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}
    item = {"pk": {"S": "probe#evt_1"}, "expiration": {"N": str(int(time.time()) + 60)}}
    ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as err:
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    assert err.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "probe#evt_1"}})["Item"] == item
    ddb.delete_item(TableName=table, Key={"pk": {"S": "probe#evt_1"}})


def test_secret_ids_in_the_environment_resolve(stack, aws):
    sm = aws("secretsmanager")
    seen = set()
    for fn in stack["functions"].values():
        for var, value in fn["environment"].items():
            if var.endswith("_SECRET_ID"):
                sm.get_secret_value(SecretId=value)
                seen.add(value)
    assert seen == set(stack["secrets"].values())
    signing = sm.get_secret_value(SecretId=stack["secrets"]["webhook_signing"])["SecretString"]
    assert json.loads(signing) == json.loads(WEBHOOK_SECRETS)
    erp_signing = sm.get_secret_value(SecretId=stack["secrets"]["erp_event_signing"])["SecretString"]
    assert json.loads(erp_signing) == json.loads(ERP_EVENT_SECRETS)


def test_a_second_stage_fits_in_the_same_account(stack, moto_endpoint, cfn):
    other = moto_stack.deploy(
        moto_endpoint, cfn, f"ledgerbridge-other-{uuid.uuid4().hex[:8]}", {"Stage": "other", "ErpKind": "epicor"}
    )
    assert other["stack_status"] == "CREATE_COMPLETE"
    names = lambda h: {  # noqa: E731
        *(q[k] for q in h["queues"].values() for k in ("name", "dlq_name") if k in q),
        *h["tables"].values(),
        *(f["name"] for f in h["functions"].values()),
        *h["secrets"].values(),
    }
    assert names(stack).isdisjoint(names(other))


def test_handoff_command_line(moto_endpoint, build_dir):
    """The entry point end-to-end tests use with their own moto server."""
    out = build_dir / "stack-resources-cli.json"
    r = subprocess.run(
        [sys.executable, str(HERE / "moto_stack.py"), "--endpoint", moto_endpoint, "--out", str(out),
         "--stack-name", f"ledgerbridge-cli-{uuid.uuid4().hex[:8]}", "--erp-kind", "epicor",
         "--secret", 'WebhookSigningSecret=["whsec_cli"]'],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    h = json.loads(out.read_text())
    assert h["version"] == moto_stack.HANDOFF_VERSION and h["stack_status"] == "CREATE_COMPLETE"
    assert h["functions"]["erp-post"]["environment"]["LEDGERBRIDGE_ERP_KIND"] == "epicor"
    assert set(h["queues"]) == {"events", "commands", "reconciliation", "erp_events", "parked"}
    assert set(h["secrets"]) == {"webhook_signing", "stripe_api_key", "erp_credentials", "erp_event_signing"}
