#!/usr/bin/env bash
# Makes sure an nginx binary is available for the TLS edge of `npm start -- --secure` and the
# TLS tests, installing Debian's nginx package when it is not. The launcher runs its own nginx
# on free ports with a generated configuration, so the system service that the package would
# start on port 80 is prevented from starting, and stopped if it did.
set -euo pipefail

find_nginx() {
  if command -v nginx >/dev/null; then
    command -v nginx
  elif [[ -x /usr/sbin/nginx ]]; then
    echo /usr/sbin/nginx
  fi
}

manual_help() {
  cat <<'HELP'
ensure-nginx: cannot install nginx automatically. Install nginx 1.18 or newer (with the ssl
module, as every distribution builds it) so that `nginx` is on PATH or in /usr/sbin, e.g.:
  Debian/Ubuntu:  sudo apt-get install nginx
  macOS:          brew install nginx
HELP
}

nginx_bin="$(find_nginx)"
if [[ -n "$nginx_bin" ]]; then
  echo "ensure-nginx: found $nginx_bin"
else
  # shellcheck source=lib/apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
  apt_install "ensure-nginx: nginx" "$(manual_help 2>&1)" nginx || exit 1
  disable_service nginx

  nginx_bin="$(find_nginx)"
  if [[ -z "$nginx_bin" ]]; then
    echo "ensure-nginx: nginx was installed but no nginx binary was found." >&2
    manual_help >&2
    exit 1
  fi
fi

"$nginx_bin" -v
