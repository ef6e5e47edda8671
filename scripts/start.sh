#!/usr/bin/env bash
# `npm start`: installs what is missing (npm dependencies, etcd), then runs the local cluster on
# embedded defaults. Arguments go to the launcher, e.g. `npm start -- --nodes 4 --members 3`
# or `npm start -- --citus` (storage on a Citus coordinator and two workers), or
# `npm start -- --secure` (TLS: clients over https/wss through an nginx edge).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/ensure-etcd.sh
# --citus runs the storage on Citus: built into Debian's PostgreSQL 15 when missing.
# --secure puts the clients' TLS edge (nginx) in front: Debian's nginx when missing.
for arg in "$@"; do
  if [[ "$arg" == "--citus" ]]; then bash scripts/ensure-citus.sh; fi
  if [[ "$arg" == "--secure" ]]; then bash scripts/ensure-nginx.sh; fi
done
exec node --import tsx packages/testkit/src/local-cluster.ts "$@"
