#!/usr/bin/env bash
# Makes sure a Chromium binary is available for the browser tests (driven by playwright-core,
# which downloads no browser), installing Debian's chromium package when it is not. The tests
# run it headless: no display is needed. CHROMIUM_PATH points them at another binary.
set -euo pipefail

manual_help() {
  cat <<'HELP'
ensure-chromium: cannot install Chromium automatically. Install it and, if it is not at
/usr/bin/chromium, set CHROMIUM_PATH to its binary, for example:
  Debian:         sudo apt-get install chromium fonts-liberation
  Ubuntu:         install Chromium or Google Chrome and set CHROMIUM_PATH to it
  macOS:          CHROMIUM_PATH="/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
HELP
}

chromium_bin="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$chromium_bin" ]]; then
  if [[ -n "${CHROMIUM_PATH:-}" ]]; then
    echo "ensure-chromium: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file." >&2
    exit 1
  fi
  # shellcheck source=lib/apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
  # fonts-liberation: readable text in screenshots (recommended by the package, not required).
  apt_install "ensure-chromium: Chromium" "$(manual_help)" chromium fonts-liberation || exit 1
  if [[ ! -x "$chromium_bin" ]]; then
    echo "ensure-chromium: chromium was installed but $chromium_bin is missing." >&2
    manual_help >&2
    exit 1
  fi
fi
# The Debian wrapper script prints a harmless shell warning on some machines; keep only the version.
version="$("$chromium_bin" --version 2>/dev/null | tail -1 || true)"
if [[ -z "$version" ]]; then
  echo "ensure-chromium: $chromium_bin does not run (no --version output)." >&2
  manual_help >&2
  exit 1
fi
echo "ensure-chromium: $version"
