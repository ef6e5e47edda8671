#!/usr/bin/env bash
# Makes sure an etcd binary is available for the test harness, installing Debian's etcd-server
# package when it is not. The harness starts its own etcd on free ports, so the system service
# that the package would start on 2379 is prevented from starting, and stopped if it did.
set -euo pipefail

find_etcd() {
  if command -v etcd >/dev/null; then
    command -v etcd
  elif [[ -x /usr/bin/etcd ]]; then
    echo /usr/bin/etcd
  fi
}

manual_help() {
  cat >&2 <<'HELP'
ensure-etcd: cannot install etcd automatically. Install etcd 3.4 or newer so that `etcd` is on
PATH, for example:
  Debian/Ubuntu:  sudo apt-get install etcd-server
  macOS:          brew install etcd
  anywhere:       download a release from https://github.com/etcd-io/etcd/releases and put
                  the etcd binary on PATH
HELP
}

etcd_bin="$(find_etcd)"
if [[ -n "$etcd_bin" ]]; then
  echo "ensure-etcd: found $etcd_bin"
else
  if ! command -v apt-get >/dev/null; then
    echo "ensure-etcd: etcd is not installed and apt-get is not available." >&2
    manual_help
    exit 1
  fi
  if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "ensure-etcd: etcd is not installed; installing it needs root, and sudo is missing." >&2
    manual_help
    exit 1
  fi

  # policy-rc.d exit 101 tells invoke-rc.d and deb-systemd-invoke not to start services.
  policy=/usr/sbin/policy-rc.d
  created_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=true
  fi
  remove_policy() {
    if [[ $created_policy == true ]]; then "${sudo[@]}" rm -f "$policy"; fi
  }
  trap remove_policy EXIT

  echo "ensure-etcd: etcd not found; installing Debian's etcd-server package"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    etcd-server

  remove_policy
  created_policy=false

  # In case a service started anyway (an existing policy allowed it): stop and disable it.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    "${sudo[@]}" systemctl disable --now etcd.service >/dev/null 2>&1 || true
  elif command -v service >/dev/null; then
    "${sudo[@]}" service etcd stop >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null; then
    "${sudo[@]}" update-rc.d etcd disable >/dev/null 2>&1 || true
  fi

  etcd_bin="$(find_etcd)"
  if [[ -z "$etcd_bin" ]]; then
    echo "ensure-etcd: etcd-server was installed but no etcd binary was found." >&2
    manual_help
    exit 1
  fi
fi

if (exec 3<>/dev/tcp/127.0.0.1/2379) 2>/dev/null; then
  echo "ensure-etcd: note: something listens on 127.0.0.1:2379 (the tests do not use it)."
fi

"$etcd_bin" --version
