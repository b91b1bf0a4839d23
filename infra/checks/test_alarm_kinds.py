"""Every `alarm = "<kind>"` the code logs pages someone: a metric filter on every function's log group counts
alarm lines by kind, and each kind has its own CloudWatch alarm.

The code logs JSON through tracing-subscriber (shared/core/src/telemetry.rs), which puts event fields under
`fields`; `json_log_lines_carry_alarm_under_fields` in that file fails if the shape ever changes.
"""

from __future__ import annotations

import re

import pytest

from conftest import REPO

ALARM_FIELD = re.compile(r'\balarm\s*=\s*"([a-z0-9_]+)"')
# Kinds only the single-process runner (`ledgerbridge local` / `serve`) logs; on AWS the same conditions are
# SQS dead-letter queues and the parked queue, which have their own depth alarms.
LOCAL_ONLY = {
    "dead_letter": "shared/adapters/src/embedded/durable.rs (embedded queue; SQS dead-letter queue alarms on AWS)",
    "parked": "tools/cli/src/local.rs (local runner; ParkedCommandsAlarm and message_parked on AWS)",
}
FUNCTION_LOGS = ["WebhookIntakeLogs", "TransformLogs", "ErpPostLogs", "PayoutReconciliationLogs", "ErpSyncLogs"]


def kinds_in_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for top in ("shared", "functions", "tools"):
        for path in (REPO / top).rglob("*.rs"):
            if "target" in path.relative_to(REPO).parts:
                continue
            for kind in ALARM_FIELD.findall(path.read_text()):
                found.setdefault(kind, set()).add(str(path.relative_to(REPO)))
    return found


def _filters(cfn):
    return {lid: r["Properties"] for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::Logs::MetricFilter"}


def _kind_alarms(cfn) -> dict[str, str]:
    out = {}
    for lid, r in cfn["Resources"].items():
        p = r["Properties"]
        if r["Type"] == "AWS::CloudWatch::Alarm" and p.get("MetricName") == "LoggedAlarms":
            (dim,) = p["Dimensions"]
            assert dim["Name"] == "kind", lid
            out[dim["Value"]] = lid
    return out


def test_the_scan_finds_the_known_kinds():
    """Guards the scan itself: kinds that exist today must be found."""
    found = kinds_in_code()
    for kind in ("message_parked", "erp_auth_failed", "xref_conflict", "event_oversized", "intake_failed"):
        assert kind in found, kind


def test_every_function_log_group_counts_alarm_lines_by_kind(cfn):
    by_group = {}
    for lid, f in _filters(cfn).items():
        for m in f["MetricTransformations"]:
            if m["MetricName"] == "LoggedAlarms":
                by_group[f["LogGroupName"]["Ref"]] = (f, m)
    assert sorted(by_group) == sorted(FUNCTION_LOGS)
    for group, (f, m) in by_group.items():
        assert f["FilterPattern"] == '{ $.fields.alarm = "*" }', group
        assert m["Dimensions"] == [{"Key": "kind", "Value": "$.fields.alarm"}], group
        assert m["MetricValue"] == "1", group
        assert m["MetricNamespace"] == {"Fn::Sub": "ledgerbridge/${AWS::StackName}"}, group


@pytest.mark.parametrize("kind", sorted(kinds_in_code()))
def test_every_alarm_kind_in_the_code_has_an_alarm(cfn, kind):
    if kind in LOCAL_ONLY:
        pytest.skip(f"local runner only: {LOCAL_ONLY[kind]}")
    alarms = _kind_alarms(cfn)
    assert kind in alarms, (
        f"the code logs alarm = \"{kind}\" ({', '.join(sorted(kinds_in_code()[kind]))}) but infra/template.yaml "
        f"has no Logged...Alarm with Dimensions kind={kind}"
    )
    p = cfn["Resources"][alarms[kind]]["Properties"]
    assert p["Namespace"] == {"Fn::Sub": "ledgerbridge/${AWS::StackName}"}
    assert p["ComparisonOperator"] == "GreaterThanThreshold" and p["Threshold"] == 0
    assert p["TreatMissingData"] == "notBreaching"
    assert "AlarmActions" in p


def test_kinds_announced_by_other_changes_are_alarmed_already(cfn):
    """Quarantined deliveries and changed payloads (intake fault handling) page someone."""
    alarms = _kind_alarms(cfn)
    assert {"event_quarantined", "event_payload_mismatch"} <= set(alarms)


def test_local_only_exemptions_are_still_needed():
    found = kinds_in_code()
    for kind, where in LOCAL_ONLY.items():
        assert kind in found, f"{kind} is no longer logged ({where}); drop its exemption"
