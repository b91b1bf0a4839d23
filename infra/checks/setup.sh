#!/usr/bin/env bash
# Installs the infrastructure checks' Python tools:
#   .venv          moto (server), boto3, cfn-lint, aws-sam-translator, pytest  (shared with tests/setup.sh)
#   .venv-checkov  checkov, which pins its own boto3
# Idempotent: when the pinned versions are already present it only checks them (about a second).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

ensure_venv() { # $1 venv dir, $2 requirements file
  local venv="$1" req="$2"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  # Compare installed versions with the == pins; install only when something is missing or different.
  if ! "$venv/bin/python" - "$req" <<'PY'
import sys, re
from importlib import metadata
ok = True
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(==\s*([^,;\s]+))?", line)
    name, pin = m.group(1), m.group(4)
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        ok = False
        continue
    if pin and have != pin:
        ok = False
sys.exit(0 if ok else 1)
PY
  then
    echo "infra setup: installing $(basename "$req") into $(basename "$venv")" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  fi
}

ensure_venv "$root/.venv" "$here/requirements.txt"
ensure_venv "$root/.venv-checkov" "$here/requirements-checkov.txt"
# moto[server] needs flask; make sure the extra really landed (an older plain `moto` install would lack it).
if ! "$root/.venv/bin/python" -c "import flask, flask_cors" >/dev/null 2>&1; then
  "$root/.venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi
