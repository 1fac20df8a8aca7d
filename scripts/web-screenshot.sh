#!/usr/bin/env bash
# Regenerates the README's screenshot of `flannel-ts demo --web` (docs/web-demo.png;
# --lang zh writes docs/web-demo-zh.png). Root: the demo builds namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
exec node dist/bench/web-screenshot.js "$@"
