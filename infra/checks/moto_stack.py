"""Deploy the translated template into a moto server and describe the resulting resources as JSON.

    python infra/checks/moto_stack.py --endpoint http://127.0.0.1:PORT --out build/infra/stack-resources.json \
        [--stack-name NAME] [--stage e2e] [--erp-kind sage500] [--secret WebhookSigningSecret='["whsec_x"]' ...]

Used by the pytest suite (test_moto_stack.py) and by end-to-end tests that bring their own moto server:
they call this script, then configure each function from `functions.<crate>.environment` in the JSON.

moto's CloudFormation silently skips some resource types, so this script completes the deployment by
hand, always driven by the template rather than by fixed names:
  * AWS::SecretsManager::Secret  -> created with the SDK (name `<stack>-<LogicalId>`), value from --secret or the
    template's SecretString; function variables that Ref a secret are pointed at the created secret's ARN;
  * TimeToLiveSpecification       -> applied with UpdateTimeToLive;
  * event source mappings         -> disabled, because moto would try to run the function in Docker on
    every SendMessage; tests drive the SQS -> function chain themselves (the mapping settings are in the JSON);
  * AWS::Lambda::Version/Alias, AWS::CodeDeploy::*  -> moto cannot create them (canary deployments of the `live`
    alias), so `for_moto` removes them and points whatever invoked the alias at the function itself.
Not emulated at all: the HTTP API (ApiGatewayV2), SQS queue policies, CloudWatch alarms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from sam_to_cfn import PLACEHOLDER_CODE_URI, load_sam, translate  # noqa: E402

REGION = "us-east-1"
HANDOFF_VERSION = 1

# Logical id -> the name the functions and tests use for it.
FUNCTIONS = {
    "WebhookIntakeFunction": "webhook-intake",
    "TransformFunction": "transform",
    "ErpPostFunction": "erp-post",
    "PayoutReconciliationFunction": "payout-reconciliation",
    "ErpSyncFunction": "erp-sync",
}
QUEUES = {  # role -> (queue, dead-letter queue or None)
    "events": ("EventsQueue", "EventsDeadLetterQueue"),
    "commands": ("CommandsQueue", "CommandsDeadLetterQueue"),
    "reconciliation": ("ReconciliationQueue", "ReconciliationDeadLetterQueue"),
    "erp_events": ("ErpEventsQueue", "ErpEventsDeadLetterQueue"),
    "parked": ("ParkedQueue", None),
}
TABLES = {"state": "StateTable"}
SECRETS = {
    "webhook_signing": "WebhookSigningSecret",
    "stripe_api_key": "StripeApiKeySecret",
    "erp_credentials": "ErpCredentialsSecret",
    "erp_event_signing": "ErpEventSigningSecret",
}


def client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


# ----------------------------------------------------------------------------- moto server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """A moto server on a free loopback port; stop() ends exactly the process it started."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("moto_server")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server did not start; see {log_path}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# ----------------------------------------------------------------------------- deployment


def placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\necho placeholder: build the functions with cargo lambda\nexit 1\n")
    return buf.getvalue()


def _wait_for_stack(cfn, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {name} still {stack['StackStatus']}")
        time.sleep(0.2)


def _refs_to(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return value["Ref"]
    return None


MOTO_UNSUPPORTED = ("AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::CodeDeploy::Application",
                    "AWS::CodeDeploy::DeploymentGroup")


def for_moto(cfn_template: dict) -> dict:
    """The template without the resources moto cannot create; references to a function's alias (its ARN)
    become the function's ARN (what the alias would invoke)."""
    tpl = json.loads(json.dumps(cfn_template))
    res = tpl["Resources"]
    alias_of = {
        lid: r["Properties"]["FunctionName"]["Ref"]
        for lid, r in res.items()
        if r.get("Type") == "AWS::Lambda::Alias"
    }
    dropped = {lid for lid, r in res.items() if r.get("Type") in MOTO_UNSUPPORTED}
    dropped |= {lid for lid, r in res.items() if r.get("Type") == "AWS::IAM::Role" and lid == "CodeDeployServiceRole"}
    for lid in dropped:
        del res[lid]

    def walk(v, key=None):
        if isinstance(v, dict):
            if set(v) == {"Ref"} and v["Ref"] in alias_of:
                fn = alias_of[v["Ref"]]
                # FunctionName takes a name (moto lists event source mappings by it); elsewhere an ARN is expected.
                return {"Ref": fn} if key == "FunctionName" else {"Fn::GetAtt": [fn, "Arn"]}
            return {k: walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, str):  # Fn::Sub strings such as the HTTP API's integration URI
            for alias, fn in alias_of.items():
                v = v.replace("${" + alias + "}", "${" + fn + ".Arn}")
        return v

    tpl["Resources"] = {lid: walk(r) for lid, r in res.items()}
    for lid, r in tpl["Resources"].items():
        deps = r.get("DependsOn")
        if isinstance(deps, list):
            r["DependsOn"] = [d for d in deps if d not in dropped]
        elif isinstance(deps, str) and deps in dropped:
            del r["DependsOn"]
    return tpl


def deploy(
    endpoint: str,
    cfn_template: dict,
    stack_name: str,
    parameters: dict[str, str],
    secret_values: dict[str, str] | None = None,
    disable_event_sources: bool = True,
) -> dict:
    """Create the stack in moto and return the hand-off description (see infra/README.md)."""
    secret_values = secret_values or {}
    resources_tpl = cfn_template["Resources"]

    bucket, key = PLACEHOLDER_CODE_URI[len("s3://") :].split("/", 1)
    s3 = client("s3", endpoint)
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=placeholder_zip())

    cfn = client("cloudformation", endpoint)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(for_moto(cfn_template)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = _wait_for_stack(cfn, stack_name)
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    # Secrets: skipped by moto's CloudFormation, so create them as the template describes them.
    sm = client("secretsmanager", endpoint)
    secret_arns: dict[str, str] = {}
    for lid, res in resources_tpl.items():
        if res.get("Type") != "AWS::SecretsManager::Secret":
            continue
        value = secret_values.get(lid, res.get("Properties", {}).get("SecretString", ""))
        created = sm.create_secret(Name=f"{stack_name}-{lid}", SecretString=value)
        secret_arns[lid] = created["ARN"]

    # TTL: moto ignores TimeToLiveSpecification in CloudFormation.
    ddb = client("dynamodb", endpoint)
    for lid, res in resources_tpl.items():
        ttl = res.get("Properties", {}).get("TimeToLiveSpecification") if res.get("Type") == "AWS::DynamoDB::Table" else None
        if ttl and ttl.get("Enabled") in (True, "true") and lid in physical:
            ddb.update_time_to_live(
                TableName=physical[lid],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    sqs = client("sqs", endpoint)
    queues: dict[str, dict] = {}
    for role, (qid, dlq_id) in QUEUES.items():
        entry: dict[str, Any] = {}
        for prefix, lid in (("", qid), ("dlq_", dlq_id)):
            if lid is None:
                continue
            url = physical[lid]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            entry[f"{prefix}url"] = url
            entry[f"{prefix}name"] = url.rsplit("/", 1)[-1]
            entry[f"{prefix}arn"] = attrs["QueueArn"]
            if not prefix:
                entry["visibility_timeout"] = int(attrs["VisibilityTimeout"])
                entry["retention_seconds"] = int(attrs["MessageRetentionPeriod"])
                if "RedrivePolicy" in attrs:
                    entry["max_receive_count"] = int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])
        queues[role] = entry

    lam = client("lambda", endpoint)
    functions: dict[str, dict] = {}
    for lid, crate in FUNCTIONS.items():
        name = physical[lid]
        conf = lam.get_function_configuration(FunctionName=name)
        env = dict(conf.get("Environment", {}).get("Variables", {}))
        # Variables that Ref a secret: moto could not resolve them (no secret resource), so point them at ours.
        tpl_env = resources_tpl[lid]["Properties"].get("Environment", {}).get("Variables", {})
        for var, val in tpl_env.items():
            target = _refs_to(val)
            if target in secret_arns:
                env[var] = secret_arns[target]
        sources = []
        for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            src = {
                "uuid": m["UUID"],
                "queue_arn": m["EventSourceArn"],
                "batch_size": m.get("BatchSize"),
                "maximum_batching_window_seconds": m.get("MaximumBatchingWindowInSeconds", 0),
                "function_response_types": m.get("FunctionResponseTypes", []),
                "maximum_concurrency": (m.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            }
            if disable_event_sources:
                lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
            sources.append(src)
        functions[crate] = {
            "name": name,
            "arn": conf["FunctionArn"],
            "timeout": conf["Timeout"],
            "memory": conf["MemorySize"],
            "environment": env,
            "event_sources": sources,
        }

    rules = {}
    for lid, res in resources_tpl.items():
        if res.get("Type") == "AWS::Events::Rule" and lid in physical:
            rule = client("events", endpoint).describe_rule(Name=physical[lid].split("/")[-1])
            rules[lid] = {"name": rule["Name"], "schedule": rule.get("ScheduleExpression"), "state": rule.get("State")}

    return {
        "version": HANDOFF_VERSION,
        "endpoint": endpoint,
        "region": REGION,
        "stack_name": stack_name,
        "stack_status": stack["StackStatus"],
        "parameters": parameters,
        "queues": queues,
        "tables": {role: physical[lid] for role, lid in TABLES.items()},
        "secrets": {role: secret_arns[lid] for role, lid in SECRETS.items()},
        "functions": functions,
        "schedules": rules,
        "outputs": outputs,
        "not_emulated": ["AWS::ApiGatewayV2::*", "AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm", "function invocation"],
    }


def default_parameters(stage: str, erp_kind: str) -> dict[str, str]:
    return {"Stage": stage, "ErpKind": erp_kind}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="moto server URL")
    ap.add_argument("--out", required=True, type=Path, help="where to write the hand-off JSON")
    ap.add_argument("--template", default=str(REPO / "infra" / "template.yaml"))
    ap.add_argument("--stack-name", default=f"ledgerbridge-{os.getpid()}")
    ap.add_argument("--stage", default="e2e")
    ap.add_argument("--erp-kind", default="sage500", choices=["epicor", "sage500", "sagepro"])
    ap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="more stack parameters")
    ap.add_argument("--secret", action="append", default=[], metavar="LOGICAL_ID=VALUE", help="initial secret values")
    ap.add_argument("--keep-event-sources", action="store_true", help="leave moto's event source mappings enabled")
    args = ap.parse_args(argv[1:])

    params = default_parameters(args.stage, args.erp_kind)
    params.update(dict(p.split("=", 1) for p in args.parameter))
    handoff = deploy(
        args.endpoint,
        translate(load_sam(args.template)),
        args.stack_name,
        params,
        secret_values=dict(s.split("=", 1) for s in args.secret),
        disable_event_sources=not args.keep_event_sources,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(handoff, indent=2) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
