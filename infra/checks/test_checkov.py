"""checkov, offline: clean, every skip justified in the template, and no skip left that nothing needs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, TEMPLATE

CHECKOV = Path(os.environ.get("LEDGERBRIDGE_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))
ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


def checkov(path: Path) -> tuple[int, dict]:
    r = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "--skip-download", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    report = json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}
    if isinstance(report, list):  # one entry per framework
        report = report[0] if report else {}
    return r.returncode, report


def failed(report: dict) -> list[tuple[str, str]]:
    return [(c["check_id"], c["resource"]) for c in report.get("results", {}).get("failed_checks", [])]


@pytest.fixture(scope="module", autouse=True)
def _installed():
    if not CHECKOV.exists():
        pytest.fail(f"checkov not installed at {CHECKOV}; run infra/checks/setup.sh")


def test_sam_template_is_clean():
    rc, report = checkov(TEMPLATE)
    assert rc == 0 and failed(report) == [], failed(report)
    assert report["summary"]["passed"] > 0


def test_translated_template_is_clean(cfn_path):
    rc, report = checkov(cfn_path)
    assert rc == 0 and failed(report) == [], failed(report)


def _skips(sam: dict) -> dict[str, list[dict]]:
    return {
        lid: res["Metadata"]["checkov"]["skip"]
        for lid, res in sam["Resources"].items()
        if isinstance(res.get("Metadata"), dict) and "checkov" in res["Metadata"]
    }


def test_every_skip_has_a_justification(sam):
    for lid, skips in _skips(sam).items():
        for s in skips:
            assert len(str(s.get("comment", "")).strip()) >= 30, f"{lid}: skip {s.get('id')} needs a real comment"


def without_skips(text: str) -> str:
    """The template text with every `checkov:` metadata block removed (and Metadata blocks left empty)."""
    lines = text.splitlines()
    out: list[str] = []
    skip_indent = None
    for line in lines:
        body = line.lstrip()
        indent = len(line) - len(body)
        if skip_indent is not None:
            if body and indent <= skip_indent:
                skip_indent = None
            else:
                continue
        if body.startswith("checkov:"):
            skip_indent = indent
            continue
        out.append(line)
    result = []
    for i, line in enumerate(out):
        if line.strip() == "Metadata:":
            nxt = next((l for l in out[i + 1 :] if l.strip()), "")
            if len(nxt) - len(nxt.lstrip()) <= len(line) - len(line.lstrip()):
                continue
        result.append(line)
    return "\n".join(result) + "\n"


def test_every_skip_is_needed(sam, build_dir):
    """Without the skips, checkov must fail exactly the skipped (check, resource) pairs: the scan can fail,
    and no skip stays behind after the template stops needing it."""
    text = without_skips(TEMPLATE.read_text())
    assert "checkov" not in text
    path = build_dir / "template-without-checkov-skips.yaml"
    path.write_text(text)

    rc, report = checkov(path)
    assert rc != 0, "checkov must fail once the justified skips are removed"
    got = {(cid, res.split(".", 1)[-1]) for cid, res in failed(report)}
    wanted = {(s["id"], lid) for lid, skips in _skips(sam).items() for s in skips}
    assert wanted - got == set(), f"skips that nothing needs any more: {sorted(wanted - got)}"
    assert got - wanted == set(), f"failures without a skip: {sorted(got - wanted)}"
