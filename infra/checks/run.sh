#!/usr/bin/env bash
# Runs the infrastructure checks (cfn-lint, SAM translation, reliability rules, checkov, moto deployment).
# Extra arguments go to pytest, e.g. `infra/checks/run.sh -k rules -x`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$here/setup.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -c "$here/pytest.ini" "$here" "$@"
