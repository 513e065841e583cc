#!/usr/bin/env bash
# Checks the SAM template with cfn-lint (installed with pip when missing). CI runs this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v cfn-lint >/dev/null 2>&1; then
    python3 -m pip install --quiet 'cfn-lint>=1.20,<2' >&2
    hash -r
fi
cfn-lint "$here/template.yaml"
echo "cfn-lint: infra/template.yaml has no error"
