#!/usr/bin/env bash
# One command for a newcomer: set the host up, then build the sample service
# image end to end on a file-backed pool with the bundled sample base image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
# The demo and the sample world it uses (testbed/) compile into build/, beside
# the product in dist/ that setup-host built.
npm run build:tests --silent
exec node build/scripts/demo.js
