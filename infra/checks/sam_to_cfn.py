"""Translate the SAM template to plain CloudFormation, offline.

    python infra/checks/sam_to_cfn.py infra/template.yaml build/infra/cfn.json [s3://bucket/key]

`sam build`/`sam package` normally replace each function's local CodeUri with an S3 location; the
translator only accepts S3 locations, so every CodeUri is pointed at one placeholder object here.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator needs a region; it makes no calls

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

PLACEHOLDER_CODE_URI = "s3://ledgerbridge-artifacts/placeholder.zip"


class OfflinePolicyLoader:
    """Only consulted when a function names an AWS managed policy by name; ours use ARNs or statements."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        }


def load_sam(path: str | Path) -> dict:
    return yaml_parse(Path(path).read_text())


def translate(sam: dict, code_uri: str = PLACEHOLDER_CODE_URI) -> dict:
    tpl = copy.deepcopy(sam)
    for res in tpl.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = code_uri
    return transform(tpl, {}, OfflinePolicyLoader())


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = argv[1], Path(argv[2])
    code_uri = argv[3] if len(argv) > 3 else PLACEHOLDER_CODE_URI
    cfn = translate(load_sam(src), code_uri)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(cfn, indent=1, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
