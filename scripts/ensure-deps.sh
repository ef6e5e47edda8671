#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than package-lock.json:
# `npm ci` when there is a lockfile, `npm install` otherwise. Safe to run on every test run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Why an install is needed, or nothing when node_modules is up to date.
install_reason() {
  local stamp=node_modules/.package-lock.json
  if [[ ! -d node_modules ]]; then
    echo "node_modules is missing"
  elif [[ -f package-lock.json && ! -f $stamp ]]; then
    echo "node_modules was not installed from package-lock.json"
  elif [[ -f package-lock.json && package-lock.json -nt $stamp ]]; then
    echo "package-lock.json is newer than node_modules"
  fi
}

if [[ -z "$(install_reason)" ]]; then
  echo "ensure-deps: node_modules is up to date"
  exit 0
fi

# Serialise with any other npm install on this machine, then look again: it may have done our work.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/npm.lock"
  flock 9
fi
reason="$(install_reason)"
if [[ -z "$reason" ]]; then
  echo "ensure-deps: node_modules is up to date"
  exit 0
fi

if [[ -f package-lock.json ]]; then
  echo "ensure-deps: $reason; running npm ci"
  npm ci --no-audit --no-fund
else
  echo "ensure-deps: $reason and there is no package-lock.json; running npm install"
  npm install --no-audit --no-fund
fi
