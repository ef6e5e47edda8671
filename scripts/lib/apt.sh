# Sourced by the ensure-* scripts: installs Debian packages as root or through sudo, without
# starting any service a package would start (the test harness runs its own on free ports).
#
#   apt_install <what, for messages> <manual install help> <package>...
# Returns 1 with the help printed when apt-get or root is not available.

apt_install() {
  local what=$1 help=$2
  shift 2
  if ! command -v apt-get >/dev/null; then
    echo "$what is not installed and apt-get is not available." >&2
    echo "$help" >&2
    return 1
  fi
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "$what is not installed; installing it needs root, and sudo is missing." >&2
      echo "$help" >&2
      return 1
    fi
    # Without a terminal (CI), a password prompt would hang or fail noisily.
    if [[ ! -t 0 ]] && ! sudo -n true 2>/dev/null; then
      echo "$what is not installed; installing it needs root, and sudo wants a password." >&2
      echo "$help" >&2
      return 1
    fi
    sudo=(sudo)
  fi

  echo "$what not found; installing Debian package(s): $*"
  # A subshell, so that its trap removes the policy file also on Ctrl-C or a failed step: a
  # leftover policy-rc.d would silently keep every service from starting on later installs.
  if ! (
    # Every step checked by hand: `set -e` does not apply inside a tested subshell.
    # policy-rc.d exit 101 tells invoke-rc.d and deb-systemd-invoke not to start services.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
      trap '"${sudo[@]}" rm -f "$policy"' EXIT
      trap 'exit 130' INT TERM
      printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null || exit 1
      "${sudo[@]}" chmod 755 "$policy" || exit 1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update || exit 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "$@" || exit 1
  ); then
    echo "$help" >&2
    return 1
  fi
}

# Stops and disables a service a package started anyway (an existing policy allowed it): the
# harness runs its own processes on free ports.
#
#   disable_service <service name>
disable_service() {
  local name=$1 sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then sudo=(sudo); fi
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    "${sudo[@]}" systemctl disable --now "$name.service" >/dev/null 2>&1 || true
  elif command -v service >/dev/null; then
    "${sudo[@]}" service "$name" stop >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null; then
    "${sudo[@]}" update-rc.d "$name" disable >/dev/null 2>&1 || true
  fi
}
