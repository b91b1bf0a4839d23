"""Reliability and hygiene rules for the translated (plain CloudFormation) template.

    python infra/checks/rules.py build/infra/cfn.json      # exit 1 and one line per violation

The rules encode the AWS guidance for Lambda + SQS and this project's operating decisions:

* every SQS event source: the queue's VisibilityTimeout >= 6 x the consumer's Timeout
  + MaximumBatchingWindowInSeconds; ReportBatchItemFailures; a redrive policy with maxReceiveCount >= 5
  into a dead-letter queue that keeps messages longer than the source;
* the ERP poster's event source has ScalingConfig.MaximumConcurrency (within 2..1000);
* the ERP poster's claim lease (LEDGERBRIDGE_LEASE_MS, or the code's default) outlasts its Timeout plus a
  margin (the ERP search lag it allows for, at least 10 s): a claim that lapses while its holder still runs
  lets a second worker post the same document;
* every queue is encrypted at rest (SqsManagedSseEnabled or a KMS key);
* every dead-letter queue has a depth > 0 alarm, every consumed queue an age-of-oldest-message alarm,
  every function an Errors alarm;
* DynamoDB tables: on-demand, TTL, point-in-time recovery, encryption;
* every function: X-Ray tracing Active, invoked through an alias that CodeDeploy shifts gradually and rolls
  back when the function's alarms (at least its Errors alarm) fire; no event source invokes $LATEST;
* no hard-coded physical names (two stages must fit in one account).

Values given as a Ref to a parameter are judged at their worst case: the parameter's MinValue where a
small number is dangerous (maxReceiveCount), its MaxValue where a large one is (Timeout).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VT_FACTOR = 6
MIN_RECEIVE_COUNT = 5
SQS_DEFAULT_VT = 30
SQS_DEFAULT_RETENTION = 345_600
LAMBDA_DEFAULT_TIMEOUT = 3
MAX_CONCURRENCY_RANGE = (2, 1000)
# Logical id of the function that posts to the ERP (its event source must be concurrency-capped).
ERP_POSTER = "ErpPostFunction"
# erp-post's claim lease when LEDGERBRIDGE_LEASE_MS is not set: `post_lease_ms` in shared/app/src/defaults.rs
# (test_rules.py reads it from there, so the two cannot drift apart).
ERP_POST_LEASE_ENV = "LEDGERBRIDGE_LEASE_MS"
ERP_POST_LEASE_DEFAULT_MS = 120_000
# The ERP search lag erp-post waits out after a create that may have committed, holding the claim meanwhile:
# LEDGERBRIDGE_ERP_SEARCH_LAG_SECS, default `RetryPolicy::settle_after_ambiguous` in shared/erp/src/posting.rs.
ERP_SEARCH_LAG_ENV = "LEDGERBRIDGE_ERP_SEARCH_LAG_SECS"
ERP_SEARCH_LAG_DEFAULT_SECS = 45
# The least margin of the lease over the Timeout (clock skew between workers, the claim's own write), used when
# the search lag is set below it. An assumption: no AWS source gives a figure.
MIN_LEASE_MARGIN_SECS = 10

NAME_PROPERTIES = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Events::Rule": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::ApiGatewayV2::Api": "Name",
}


class Unresolvable(Exception):
    pass


@dataclass
class Template:
    doc: dict

    @property
    def resources(self) -> dict[str, dict]:
        return self.doc.get("Resources", {})

    @property
    def parameters(self) -> dict[str, dict]:
        return self.doc.get("Parameters", {})

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == rtype}

    def props(self, logical_id: str) -> dict:
        return self.resources.get(logical_id, {}).get("Properties", {}) or {}

    def number(self, value: Any, default: int | None, worst: str) -> int:
        """A numeric property: a literal, or a Ref to a parameter judged at `worst` ('min' or 'max')."""
        if value is None:
            if default is None:
                raise Unresolvable("missing")
            return default
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.parameters:
            param = self.parameters[value["Ref"]]
            key = "MinValue" if worst == "min" else "MaxValue"
            bound = param.get(key)
            if bound is None:
                raise Unresolvable(f"parameter {value['Ref']} has no {key}, so its worst case is unbounded")
            return int(bound)
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            return int(value)
        raise Unresolvable(f"cannot evaluate {json.dumps(value)}")


def _ref_target(value: Any) -> str | None:
    """Logical id behind {"Ref": X} or {"Fn::GetAtt": [X, attr]} (or "X.attr")."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            if isinstance(att, list) and att:
                return att[0]
            if isinstance(att, str):
                return att.split(".", 1)[0]
    return None


def _is_literal(value: Any) -> bool:
    return isinstance(value, (str, int, float))


def _function_of(t: Template, lid: str | None) -> str | None:
    """The function behind a logical id: itself, or the function an alias (or version) belongs to."""
    res = t.resources.get(lid or "", {})
    if res.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        return _ref_target(res.get("Properties", {}).get("FunctionName"))
    return lid


def _sqs_sources(t: Template) -> list[tuple[str, str, str, dict]]:
    """(mapping id, function id, queue id, mapping properties) for every SQS event source mapping."""
    out = []
    for mid, res in t.of_type("AWS::Lambda::EventSourceMapping").items():
        p = res.get("Properties", {})
        qid = _ref_target(p.get("EventSourceArn"))
        fid = _function_of(t, _ref_target(p.get("FunctionName")))
        if qid and t.resources.get(qid, {}).get("Type") == "AWS::SQS::Queue":
            out.append((mid, fid or "?", qid, p))
    return out


def check_event_sources(t: Template) -> list[str]:
    errors: list[str] = []
    sources = _sqs_sources(t)
    for mid, res in t.of_type("AWS::Lambda::EventSourceMapping").items():
        qid = _ref_target(res.get("Properties", {}).get("EventSourceArn"))
        if qid is None:
            errors.append(f"{mid}: EventSourceArn must reference a queue in this template")
    for mid, fid, qid, p in sources:
        q = t.props(qid)
        try:
            timeout = t.number(t.props(fid).get("Timeout"), LAMBDA_DEFAULT_TIMEOUT, "max")
            window = t.number(p.get("MaximumBatchingWindowInSeconds"), 0, "max")
            vt = t.number(q.get("VisibilityTimeout"), SQS_DEFAULT_VT, "min")
            need = VT_FACTOR * timeout + window
            if vt < need:
                errors.append(
                    f"{qid}: VisibilityTimeout {vt} s is below {VT_FACTOR} x {fid} Timeout {timeout} s"
                    f" + batching window {window} s = {need} s"
                )
        except Unresolvable as e:
            errors.append(f"{qid}/{fid}: visibility timeout rule cannot be evaluated: {e}")

        if "ReportBatchItemFailures" not in (p.get("FunctionResponseTypes") or []):
            errors.append(f"{mid}: FunctionResponseTypes must include ReportBatchItemFailures")

        redrive = q.get("RedrivePolicy")
        if not isinstance(redrive, dict):
            errors.append(f"{qid}: consumed by {fid} but has no RedrivePolicy (dead-letter queue)")
        else:
            try:
                mrc = t.number(redrive.get("maxReceiveCount"), None, "min")
                if mrc < MIN_RECEIVE_COUNT:
                    errors.append(f"{qid}: maxReceiveCount {mrc} is below {MIN_RECEIVE_COUNT}")
            except Unresolvable as e:
                errors.append(f"{qid}: maxReceiveCount cannot be evaluated: {e}")
            dlq = _ref_target(redrive.get("deadLetterTargetArn"))
            if dlq is None or t.resources.get(dlq, {}).get("Type") != "AWS::SQS::Queue":
                errors.append(f"{qid}: deadLetterTargetArn must reference a queue in this template")
            else:
                try:
                    src_ret = t.number(q.get("MessageRetentionPeriod"), SQS_DEFAULT_RETENTION, "max")
                    dlq_ret = t.number(t.props(dlq).get("MessageRetentionPeriod"), SQS_DEFAULT_RETENTION, "min")
                    if dlq_ret <= src_ret:
                        errors.append(
                            f"{dlq}: MessageRetentionPeriod {dlq_ret} s must be longer than its source {qid}'s {src_ret} s"
                        )
                except Unresolvable as e:
                    errors.append(f"{dlq}: retention cannot be evaluated: {e}")

        if fid == ERP_POSTER:
            mc = (p.get("ScalingConfig") or {}).get("MaximumConcurrency")
            if mc is None:
                errors.append(f"{mid}: the ERP poster's event source needs ScalingConfig.MaximumConcurrency")
            else:
                try:
                    lo = t.number(mc, None, "min")
                    hi = t.number(mc, None, "max")
                    if lo < MAX_CONCURRENCY_RANGE[0] or hi > MAX_CONCURRENCY_RANGE[1]:
                        errors.append(f"{mid}: MaximumConcurrency range {lo}..{hi} is outside 2..1000")
                except Unresolvable as e:
                    errors.append(f"{mid}: MaximumConcurrency cannot be evaluated: {e}")

    if ERP_POSTER in t.resources and not any(fid == ERP_POSTER for _, fid, _, _ in sources):
        errors.append(f"{ERP_POSTER}: has no SQS event source")
    return errors


def check_claim_lease(t: Template) -> list[str]:
    """erp-post's claim lease must outlast one run of the function plus a margin.

    A claim (the intent record `INPROGRESS` with its `in_progress_expiration`) that lapses while its holder is
    still running lets a redelivered copy take it over and post the same document. The holder runs at most its
    Timeout; after a create that may have committed it keeps the claim held while the ERP's search catches up
    (the search lag), so the margin is that lag, and at least MIN_LEASE_MARGIN_SECS."""
    if ERP_POSTER not in t.resources:
        return []
    p = t.props(ERP_POSTER)
    env = ((p.get("Environment") or {}).get("Variables")) or {}
    try:
        timeout = t.number(p.get("Timeout"), LAMBDA_DEFAULT_TIMEOUT, "max")
        lease_ms = t.number(env.get(ERP_POST_LEASE_ENV), ERP_POST_LEASE_DEFAULT_MS, "min")
        lag = t.number(env.get(ERP_SEARCH_LAG_ENV), ERP_SEARCH_LAG_DEFAULT_SECS, "max")
    except Unresolvable as e:
        return [f"{ERP_POSTER}: claim lease rule cannot be evaluated: {e}"]
    margin = max(lag, MIN_LEASE_MARGIN_SECS)
    need_ms = (timeout + margin) * 1000
    if lease_ms < need_ms:
        source = ERP_POST_LEASE_ENV if ERP_POST_LEASE_ENV in env else f"{ERP_POST_LEASE_ENV} (not set: the default)"
        return [
            f"{ERP_POSTER}: claim lease {source} {lease_ms} ms is below Timeout {timeout} s + margin {margin} s"
            f" = {need_ms} ms; a claim lapsing while its holder runs lets a second worker post the same document"
        ]
    return []


def check_queue_encryption(t: Template) -> list[str]:
    errors = []
    for qid, res in t.of_type("AWS::SQS::Queue").items():
        p = res.get("Properties", {})
        if p.get("SqsManagedSseEnabled") not in (True, "true") and not p.get("KmsMasterKeyId"):
            errors.append(f"{qid}: not encrypted at rest (set SqsManagedSseEnabled: true or KmsMasterKeyId)")
    return errors


def _alarms(t: Template) -> list[dict]:
    return [r.get("Properties", {}) for r in t.of_type("AWS::CloudWatch::Alarm").values()]


def _alarm_on(t: Template, namespace: str, metric: str, target: str) -> list[dict]:
    found = []
    for a in _alarms(t):
        if a.get("Namespace") != namespace or a.get("MetricName") != metric:
            continue
        if any(_ref_target(d.get("Value")) == target for d in a.get("Dimensions", []) if isinstance(d, dict)):
            found.append(a)
    return found


def check_alarms(t: Template) -> list[str]:
    errors = []
    sources = _sqs_sources(t)
    dlqs = set()
    for _, _, qid, _ in sources:
        dlq = _ref_target((t.props(qid).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if dlq:
            dlqs.add(dlq)
    for dlq in sorted(dlqs):
        ok = [
            a
            for a in _alarm_on(t, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq)
            if a.get("ComparisonOperator") == "GreaterThanThreshold" and str(a.get("Threshold")) in ("0", "0.0")
        ]
        if not ok:
            errors.append(f"{dlq}: dead-letter queue has no ApproximateNumberOfMessagesVisible > 0 alarm")
    for qid in sorted({q for _, _, q, _ in sources}):
        if not _alarm_on(t, "AWS/SQS", "ApproximateAgeOfOldestMessage", qid):
            errors.append(f"{qid}: no ApproximateAgeOfOldestMessage alarm")
    for fid in sorted(t.of_type("AWS::Lambda::Function")):
        if not _alarm_on(t, "AWS/Lambda", "Errors", fid):
            errors.append(f"{fid}: no Errors alarm")
    return errors


def check_tables(t: Template) -> list[str]:
    errors = []
    for tid, res in t.of_type("AWS::DynamoDB::Table").items():
        p = res.get("Properties", {})
        if p.get("BillingMode") != "PAY_PER_REQUEST":
            errors.append(f"{tid}: BillingMode must be PAY_PER_REQUEST (on-demand)")
        ttl = p.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled") not in (True, "true") or not ttl.get("AttributeName"):
            errors.append(f"{tid}: TTL must be enabled with an attribute name")
        pitr = p.get("PointInTimeRecoverySpecification") or {}
        if pitr.get("PointInTimeRecoveryEnabled") not in (True, "true"):
            errors.append(f"{tid}: point-in-time recovery must be enabled")
        sse = p.get("SSESpecification") or {}
        if sse.get("SSEEnabled") not in (True, "true"):
            errors.append(f"{tid}: SSESpecification.SSEEnabled must be true")
    return errors


def check_no_fixed_names(t: Template) -> list[str]:
    errors = []
    for rid, res in t.resources.items():
        prop = NAME_PROPERTIES.get(res.get("Type", ""))
        if prop and _is_literal((res.get("Properties") or {}).get(prop)):
            errors.append(f"{rid}: {prop} is hard-coded; let CloudFormation name it or derive it from a resource")
    return errors


def check_safe_deployments(t: Template) -> list[str]:
    """Every function is invoked through an alias that CodeDeploy shifts gradually, rolling back on alarms
    that include the function's own Errors alarm; nothing invokes a function's $LATEST directly."""
    errors = []
    groups = t.of_type("AWS::CodeDeploy::DeploymentGroup")
    aliases = {
        _ref_target(r.get("Properties", {}).get("FunctionName")): (aid, r)
        for aid, r in t.of_type("AWS::Lambda::Alias").items()
    }
    for fid in sorted(t.of_type("AWS::Lambda::Function")):
        if fid not in aliases:
            errors.append(f"{fid}: no alias (AutoPublishAlias), so every deployment replaces it at once")
            continue
        aid, alias = aliases[fid]
        update = (alias.get("UpdatePolicy") or {}).get("CodeDeployLambdaAliasUpdate") or {}
        gid = _ref_target(update.get("DeploymentGroupName"))
        if gid not in groups:
            errors.append(f"{aid}: not updated through a CodeDeploy deployment group (DeploymentPreference)")
            continue
        g = groups[gid].get("Properties", {})
        alarm_ids = {_ref_target(a.get("Name")) for a in (g.get("AlarmConfiguration") or {}).get("Alarms", [])}
        own_errors = {
            aid_ for aid_, a in t.of_type("AWS::CloudWatch::Alarm").items()
            if a.get("Properties", {}).get("MetricName") == "Errors"
            and any(_ref_target(d.get("Value")) == fid for d in a.get("Properties", {}).get("Dimensions", []))
        }
        if not (g.get("AlarmConfiguration") or {}).get("Enabled") or not alarm_ids & own_errors:
            errors.append(f"{gid}: the deployment of {fid} is not stopped by its Errors alarm")
        rollback = g.get("AutoRollbackConfiguration") or {}
        if not rollback.get("Enabled") or "DEPLOYMENT_STOP_ON_ALARM" not in rollback.get("Events", []):
            errors.append(f"{gid}: no automatic rollback when an alarm fires")
        if not str(t.props(fid).get("TracingConfig", {}).get("Mode")) == "Active":
            errors.append(f"{fid}: X-Ray tracing is not Active")
    for mid, res in t.of_type("AWS::Lambda::EventSourceMapping").items():
        target = _ref_target(res.get("Properties", {}).get("FunctionName"))
        if target in t.of_type("AWS::Lambda::Function"):
            errors.append(f"{mid}: invokes {target}'s latest code instead of its alias")
    return errors


RULES = [check_event_sources, check_claim_lease, check_queue_encryption, check_alarms, check_tables,
         check_no_fixed_names, check_safe_deployments]


def violations(doc: dict) -> list[str]:
    t = Template(doc)
    out: list[str] = []
    for rule in RULES:
        out.extend(rule(t))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = violations(json.loads(Path(argv[1]).read_text()))
    for v in found:
        print(v)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
