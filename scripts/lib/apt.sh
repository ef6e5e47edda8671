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
    sudo=(sudo)
  fi

  # policy-rc.d exit 101 tells invoke-rc.d and deb-systemd-invoke not to start services.
  local policy=/usr/sbin/policy-rc.d created_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=true
  fi
  echo "$what not found; installing Debian package(s): $*"
  local status=0
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update || status=$?
  if [[ $status -eq 0 ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "$@" || status=$?
  fi
  if [[ $created_policy == true ]]; then "${sudo[@]}" rm -f "$policy"; fi
  if [[ $status -ne 0 ]]; then
    echo "$help" >&2
    return 1
  fi
}
