#!/usr/bin/env bash
# `npm start`: installs what is missing (npm dependencies, etcd), then runs the local cluster on
# embedded defaults. Arguments go to the launcher, e.g. `npm start -- --nodes 4 --members 3`
# or `npm start -- --citus` (storage on a Citus coordinator and two workers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/ensure-etcd.sh
# --citus runs the storage on Citus: built into Debian's PostgreSQL 15 when missing.
for arg in "$@"; do
  if [[ "$arg" == "--citus" ]]; then bash scripts/ensure-citus.sh; fi
done
exec node --import tsx packages/testkit/src/local-cluster.ts "$@"
