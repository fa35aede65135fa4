#!/usr/bin/env bash
# One command for a newcomer: set the host up, then build the sample service
# image end to end on a file-backed pool with the bundled sample base image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
exec node dist/scripts/demo.js
