#!/bin/sh
# Chooses the program by the first argument: node (default), registry, chatctl, migrate,
# edge-sync (writes the TLS edge's nginx routes from membership; run it beside nginx).
# Anything else is executed as given (e.g. `sh`).
set -e
cd /app
cmd="${1:-node}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  node) exec node --import tsx packages/node/src/main.ts "$@" ;;
  registry) exec node --import tsx packages/registry/src/main.ts "$@" ;;
  chatctl) exec node packages/cli/bin/chatctl "$@" ;;
  migrate) exec node --import tsx packages/store/src/cli.ts "$@" ;;
  edge-sync) exec node --import tsx packages/edge/src/main.ts "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
