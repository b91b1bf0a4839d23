"""Shared fixtures: paths, the parsed SAM template, its translation, and a moto server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD = REPO / "build" / "infra"
TEMPLATE = REPO / "infra" / "template.yaml"
sys.path.insert(0, str(HERE))

import moto_stack  # noqa: E402
from sam_to_cfn import load_sam, translate  # noqa: E402


@pytest.fixture(scope="session")
def build_dir() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    return BUILD


@pytest.fixture(scope="session")
def sam() -> dict:
    return load_sam(TEMPLATE)


@pytest.fixture(scope="session")
def cfn_path(sam: dict, build_dir: Path) -> Path:
    out = build_dir / "cfn.json"
    out.write_text(json.dumps(translate(sam), indent=1) + "\n")
    return out


@pytest.fixture(scope="session")
def cfn(cfn_path: Path) -> dict:
    return json.loads(cfn_path.read_text())


@pytest.fixture(scope="session")
def moto_endpoint(build_dir: Path):
    """LEDGERBRIDGE_MOTO_ENDPOINT reuses a running server; otherwise one is started and stopped here."""
    external = os.environ.get("LEDGERBRIDGE_MOTO_ENDPOINT")
    if external:
        yield external.rstrip("/")
        return
    server = moto_stack.MotoServer(build_dir / "moto.log")
    try:
        yield server.endpoint
    finally:
        server.stop()
