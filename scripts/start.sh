#!/usr/bin/env bash
# `npm start`: installs what is missing (npm dependencies, etcd), then runs the local cluster on
# embedded defaults. Arguments go to the launcher, e.g. `npm start -- --nodes 4 --members 3`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/ensure-etcd.sh
exec node --import tsx packages/testkit/src/local-cluster.ts "$@"
