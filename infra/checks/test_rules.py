"""The reliability rule check (rules.py): passes on the template, fails on deliberately broken copies."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from conftest import HERE
from rules import violations
from sam_to_cfn import translate


def test_template_satisfies_every_rule(cfn):
    assert violations(cfn) == []


def _res(sam, lid):
    return sam["Resources"][lid]["Properties"]


def _del_alarm(sam, lid):
    del sam["Resources"][lid]


# Each mutation breaks exactly one rule of the SAM template; the check must name the offending resource.
BREAKAGES = {
    "visibility timeout below 6 x timeout": (
        lambda s: _res(s, "EventsQueue").update(VisibilityTimeout=179),
        "EventsQueue: VisibilityTimeout 179 s is below 6 x TransformFunction Timeout 30 s",
    ),
    "consumer timeout raised without the queue": (
        lambda s: _res(s, "ErpPostFunction").update(Timeout=61),
        "CommandsQueue: VisibilityTimeout 360 s is below 6 x ErpPostFunction Timeout 61 s",
    ),
    "batching window not accounted for": (
        lambda s: _res(s, "PayoutReconciliationFunction")["Events"]["Payouts"]["Properties"].update(
            MaximumBatchingWindowInSeconds=5
        ),
        "ReconciliationQueue: VisibilityTimeout 720 s is below",
    ),
    "default visibility timeout": (
        lambda s: _res(s, "EventsQueue").pop("VisibilityTimeout"),
        "EventsQueue: VisibilityTimeout 30 s",
    ),
    "maxReceiveCount below 5": (
        lambda s: _res(s, "EventsQueue")["RedrivePolicy"].update(maxReceiveCount=4),
        "EventsQueue: maxReceiveCount 4 is below 5",
    ),
    "maxReceiveCount parameter allows less than 5": (
        lambda s: s["Parameters"]["ErpMaxReceiveCount"].update(MinValue=1),
        "CommandsQueue: maxReceiveCount 1 is below 5",
    ),
    "maxReceiveCount parameter unbounded": (
        lambda s: s["Parameters"]["ErpMaxReceiveCount"].pop("MinValue"),
        "CommandsQueue: maxReceiveCount cannot be evaluated",
    ),
    "dead-letter retention not longer than the source": (
        lambda s: _res(s, "CommandsDeadLetterQueue").update(MessageRetentionPeriod=345600),
        "CommandsDeadLetterQueue: MessageRetentionPeriod 345600 s must be longer",
    ),
    "no dead-letter queue": (
        lambda s: _res(s, "ReconciliationQueue").pop("RedrivePolicy"),
        "ReconciliationQueue: consumed by PayoutReconciliationFunction but has no RedrivePolicy",
    ),
    "no partial batch responses": (
        lambda s: _res(s, "TransformFunction")["Events"]["Events"]["Properties"].pop("FunctionResponseTypes"),
        "TransformFunctionEvents: FunctionResponseTypes must include ReportBatchItemFailures",
    ),
    "no maximum concurrency on the ERP source": (
        lambda s: _res(s, "ErpPostFunction")["Events"]["Commands"]["Properties"].pop("ScalingConfig"),
        "ErpPostFunctionCommands: the ERP poster's event source needs ScalingConfig.MaximumConcurrency",
    ),
    "maximum concurrency may exceed 1000": (
        lambda s: s["Parameters"]["ErpMaxConcurrency"].update(MaxValue=5000),
        "MaximumConcurrency range 2..5000 is outside 2..1000",
    ),
    "erp-post claim lease shorter than its timeout": (
        lambda s: _res(s, "ErpPostFunction")["Environment"]["Variables"].update(LEDGERBRIDGE_LEASE_MS="60000"),
        "ErpPostFunction: claim lease LEDGERBRIDGE_LEASE_MS 60000 ms is below Timeout 60 s + margin 45 s = 105000 ms",
    ),
    "erp-post timeout raised past the default lease": (
        lambda s: _res(s, "ErpPostFunction").update(Timeout=90),
        "ErpPostFunction: claim lease LEDGERBRIDGE_LEASE_MS (not set: the default) 120000 ms is below Timeout 90 s"
        " + margin 45 s = 135000 ms",
    ),
    "erp-post search lag raised past the lease": (
        lambda s: _res(s, "ErpPostFunction")["Environment"]["Variables"].update(LEDGERBRIDGE_ERP_SEARCH_LAG_SECS="90"),
        "ErpPostFunction: claim lease LEDGERBRIDGE_LEASE_MS (not set: the default) 120000 ms is below Timeout 60 s"
        " + margin 90 s = 150000 ms",
    ),
    "erp-post lease parameter unbounded": (
        lambda s: [
            s["Parameters"].update(ErpPostLeaseMs={"Type": "Number", "Default": 120000}),
            _res(s, "ErpPostFunction")["Environment"]["Variables"].update(
                LEDGERBRIDGE_LEASE_MS={"Ref": "ErpPostLeaseMs"}
            ),
        ],
        "ErpPostFunction: claim lease rule cannot be evaluated: parameter ErpPostLeaseMs has no MinValue",
    ),
    "unencrypted queue": (
        lambda s: _res(s, "ParkedQueue").pop("SqsManagedSseEnabled"),
        "ParkedQueue: not encrypted at rest",
    ),
    "missing dead-letter alarm": (
        lambda s: _del_alarm(s, "CommandsDeadLetterAlarm"),
        "CommandsDeadLetterQueue: dead-letter queue has no ApproximateNumberOfMessagesVisible > 0 alarm",
    ),
    "missing age alarm": (
        lambda s: _del_alarm(s, "EventsQueueAgeAlarm"),
        "EventsQueue: no ApproximateAgeOfOldestMessage alarm",
    ),
    "missing errors alarm": (
        lambda s: _del_alarm(s, "ErpPostErrorsAlarm"),
        "ErpPostFunction: no Errors alarm",
    ),
    "provisioned table": (
        lambda s: _res(s, "StateTable").update(BillingMode="PROVISIONED"),
        "StateTable: BillingMode must be PAY_PER_REQUEST",
    ),
    "no point-in-time recovery": (
        lambda s: _res(s, "StateTable").pop("PointInTimeRecoverySpecification"),
        "StateTable: point-in-time recovery must be enabled",
    ),
    "no TTL": (
        lambda s: _res(s, "StateTable")["TimeToLiveSpecification"].update(Enabled=False),
        "StateTable: TTL must be enabled",
    ),
    "no table encryption": (
        lambda s: _res(s, "StateTable").pop("SSESpecification"),
        "StateTable: SSESpecification.SSEEnabled must be true",
    ),
    "ERP events queue visibility timeout below 6 x erp-sync timeout": (
        lambda s: _res(s, "ErpEventsQueue").update(VisibilityTimeout=150),
        "ErpEventsQueue: VisibilityTimeout 150 s is below 6 x ErpSyncFunction Timeout 30 s",
    ),
    "ERP events maxReceiveCount below 5": (
        lambda s: _res(s, "ErpEventsQueue")["RedrivePolicy"].update(maxReceiveCount=2),
        "ErpEventsQueue: maxReceiveCount 2 is below 5",
    ),
    "ERP events dead-letter retention not longer than the source": (
        lambda s: _res(s, "ErpEventsDeadLetterQueue").update(MessageRetentionPeriod=345600),
        "ErpEventsDeadLetterQueue: MessageRetentionPeriod 345600 s must be longer",
    ),
    "no partial batch responses from erp-sync": (
        lambda s: _res(s, "ErpSyncFunction")["Events"]["ErpEvents"]["Properties"].pop("FunctionResponseTypes"),
        "ErpSyncFunctionErpEvents: FunctionResponseTypes must include ReportBatchItemFailures",
    ),
    "missing ERP events dead-letter alarm": (
        lambda s: _del_alarm(s, "ErpEventsDeadLetterAlarm"),
        "ErpEventsDeadLetterQueue: dead-letter queue has no ApproximateNumberOfMessagesVisible > 0 alarm",
    ),
    "missing ERP events age alarm": (
        lambda s: _del_alarm(s, "ErpEventsQueueAgeAlarm"),
        "ErpEventsQueue: no ApproximateAgeOfOldestMessage alarm",
    ),
    "missing erp-sync errors alarm": (
        lambda s: _del_alarm(s, "ErpSyncErrorsAlarm"),
        "ErpSyncFunction: no Errors alarm",
    ),
    "no alias (all-at-once deployments)": (
        lambda s: [s["Globals"]["Function"].pop("AutoPublishAlias")]
        + [r["Properties"].pop("DeploymentPreference") for r in s["Resources"].values()
           if r["Type"] == "AWS::Serverless::Function"],
        "TransformFunction: no alias (AutoPublishAlias)",
    ),
    "canary not stopped by the Errors alarm": (
        lambda s: _res(s, "ErpPostFunction")["DeploymentPreference"].update(Alarms=[{"Ref": "LoggedXrefConflictAlarm"}]),
        "ErpPostFunctionDeploymentGroup: the deployment of ErpPostFunction is not stopped by its Errors alarm",
    ),
    "tracing not active": (
        lambda s: s["Globals"]["Function"].update(Tracing="PassThrough"),
        "ErpSyncFunction: X-Ray tracing is not Active",
    ),
    "hard-coded queue name": (
        lambda s: _res(s, "EventsQueue").update(QueueName="ledgerbridge-events"),
        "EventsQueue: QueueName is hard-coded",
    ),
    "hard-coded function name": (
        lambda s: _res(s, "TransformFunction").update(FunctionName="transform"),
        "TransformFunction: FunctionName is hard-coded",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_rule_check_fails_on_a_broken_copy(sam, name):
    mutate, expected = BREAKAGES[name]
    broken = copy.deepcopy(sam)
    mutate(broken)
    found = violations(translate(broken))
    assert any(expected in v for v in found), f"expected {expected!r} among {found}"


def test_lease_defaults_are_the_codes():
    """The rule judges an unset LEDGERBRIDGE_LEASE_MS / LEDGERBRIDGE_ERP_SEARCH_LAG_SECS at erp-post's own
    defaults: read them from the source, so a changed default cannot leave the rule checking a stale figure."""
    import re

    import rules

    repo = HERE.parent.parent
    defaults = (repo / "shared" / "app" / "src" / "defaults.rs").read_text()
    m = re.search(r"^\s*post_lease_ms:\s*([\d_]+),", defaults, re.M)
    assert m, "post_lease_ms not found in shared/app/src/defaults.rs"
    assert int(m.group(1).replace("_", "")) == rules.ERP_POST_LEASE_DEFAULT_MS
    posting = (repo / "shared" / "erp" / "src" / "posting.rs").read_text()
    m = re.search(r"settle_after_ambiguous:\s*Duration::from_secs\((\d+)\)", posting)
    assert m, "the default settle_after_ambiguous not found in shared/erp/src/posting.rs"
    assert int(m.group(1)) == rules.ERP_SEARCH_LAG_DEFAULT_SECS
    app = (repo / "shared" / "app" / "src" / "erp_post.rs").read_text()
    assert '"LEASE_MS"' in app and '"ERP_SEARCH_LAG_SECS"' in app, "erp-post reads other variables now"


def test_command_line_exit_codes(cfn, build_dir):
    """The stand-alone rule check (usable in CI without pytest) exits 1 on a too-short visibility timeout."""
    good = build_dir / "cfn.json"
    r = subprocess.run([sys.executable, str(HERE / "rules.py"), str(good)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    broken = copy.deepcopy(cfn)
    broken["Resources"]["CommandsQueue"]["Properties"]["VisibilityTimeout"] = 300
    path = build_dir / "cfn-broken-visibility.json"
    path.write_text(json.dumps(broken))
    r = subprocess.run([sys.executable, str(HERE / "rules.py"), str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "CommandsQueue: VisibilityTimeout 300 s is below 6 x ErpPostFunction Timeout 60 s" in r.stdout
