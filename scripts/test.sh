#!/usr/bin/env bash
# The project's test command (`npm test`): dependencies, lint, format, types, then jest.
# Arguments go to jest, e.g. `npm test -- packages/protocol` or `-- --selectProjects unit`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Dependencies"
bash scripts/ensure-deps.sh
step "etcd"
bash scripts/ensure-etcd.sh
step "Citus (the storage tier's tests)"
bash scripts/ensure-citus.sh
step "Chromium (browser tests)"
bash scripts/ensure-chromium.sh
step "nginx (the TLS edge's tests)"
bash scripts/ensure-nginx.sh
step "ESLint"
npx eslint .
step "Prettier"
npx prettier --check .
step "TypeScript"
npx tsc -p tsconfig.json --noEmit
step "Jest"
npx jest --ci "$@"
