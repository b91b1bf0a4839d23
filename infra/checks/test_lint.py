"""cfn-lint on the SAM template and on the translated template.

cfn-lint's exit code is a bit mask (2 error, 4 warning, 8 informational); anything but 0 fails, so a
warning must be fixed or ignored on the resource with `Metadata: cfn-lint: config: ignore_checks` and a comment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import TEMPLATE

CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CFN_LINT, str(path)], capture_output=True, text=True, timeout=120)


def test_sam_template_is_lint_clean():
    r = lint(TEMPLATE)
    assert r.returncode == 0, r.stdout + r.stderr


def test_translated_template_is_lint_clean(cfn_path):
    r = lint(cfn_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_lint_catches_an_invalid_runtime_in_the_translation(cfn, build_dir):
    """cfn-lint no longer expands SAM, so only the translated template shows this; the check must fail."""
    broken = json.loads(json.dumps(cfn))
    broken["Resources"]["TransformFunction"]["Properties"]["Runtime"] = "provided.al2099"
    path = build_dir / "cfn-broken-runtime.json"
    path.write_text(json.dumps(broken))
    r = lint(path)
    assert r.returncode & 2, r.stdout
    assert "provided.al2099" in r.stdout


def test_every_lint_suppression_is_explained(sam):
    for lid, res in sam["Resources"].items():
        ignored = ((res.get("Metadata") or {}).get("cfn-lint") or {}).get("config", {}).get("ignore_checks")
        if ignored:
            comment = (res.get("Metadata") or {}).get("cfn-lint", {}).get("comment", "")
            assert len(comment) >= 20, f"{lid}: ignore_checks {ignored} needs a `comment` explaining why"
