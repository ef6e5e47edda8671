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
  cat <<'HELP'
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
  # shellcheck source=lib/apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
  apt_install "ensure-etcd: etcd" "$(manual_help 2>&1)" etcd-server || exit 1
  disable_service etcd

  etcd_bin="$(find_etcd)"
  if [[ -z "$etcd_bin" ]]; then
    echo "ensure-etcd: etcd-server was installed but no etcd binary was found." >&2
    manual_help >&2
    exit 1
  fi
fi

if (exec 3<>/dev/tcp/127.0.0.1/2379) 2>/dev/null; then
  echo "ensure-etcd: note: something listens on 127.0.0.1:2379 (the tests do not use it)."
fi

"$etcd_bin" --version
