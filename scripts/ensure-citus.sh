#!/usr/bin/env bash
# Makes sure the Citus extension is installed into Debian's PostgreSQL 15, for the Citus tier of
# the tests and `npm start -- --citus`. Citus is in neither Debian's packages nor npm, so it is
# built from source when missing: from ../shared/vendor/citus when that folder exists (source,
# checksum and a patch), otherwise from the upstream release archive, checksum verified. Debian's
# postgresql-15 and the build dependencies come from apt, without starting any service.
#
#   scripts/ensure-citus.sh          # install when missing, then print where it is
#   CITUS_PG_BINDIR=/usr/lib/postgresql/15/bin scripts/ensure-citus.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CITUS_VERSION=13.2.2
# sha256 of the source archive (the v13.2.2 tag, prefix citus-13.2.2/).
CITUS_SHA256=dd2453caec20a830e5e63f1def5c5a98cb6f57ae510407cdcd800916fcdab430
UPSTREAM_URL="https://github.com/citusdata/citus/archive/refs/tags/v${CITUS_VERSION}.tar.gz"
VENDOR_DIR="$(pwd)/../shared/vendor/citus"
PG_MAJOR=15
bindir="${CITUS_PG_BINDIR:-/usr/lib/postgresql/${PG_MAJOR}/bin}"
build_root="${CITUS_BUILD_DIR:-$(pwd)/.tmp/citus-build}"

say() { echo "ensure-citus: $*"; }

manual_help() {
  cat <<HELP
ensure-citus: cannot install Citus automatically. Citus ${CITUS_VERSION} must be built into
PostgreSQL ${PG_MAJOR} by hand, for example on Debian 12, as root:
  apt-get install postgresql-15 postgresql-server-dev-15 libzstd-dev liblz4-dev \\
    libcurl4-openssl-dev libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev
  curl -LO ${UPSTREAM_URL}   # sha256 ${CITUS_SHA256}
  tar xzf v${CITUS_VERSION}.tar.gz && cd citus-${CITUS_VERSION} && ./configure && make -j2 && make install
HELP
}

installed() {
  [[ -x "$bindir/postgres" && -x "$bindir/initdb" && -f "$bindir/../lib/citus.so" ]]
}

if installed; then
  say "found Citus in PostgreSQL ${PG_MAJOR} ($bindir)"
  exit 0
fi

# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
say "Citus is not installed into PostgreSQL ${PG_MAJOR}; building Citus ${CITUS_VERSION} from source (about 2 minutes)"
if [[ ! -x "$bindir/postgres" || ! -d "/usr/include/postgresql/${PG_MAJOR}/server" ]]; then
  apt_install "ensure-citus: PostgreSQL ${PG_MAJOR} server and headers" "$(manual_help)" \
    "postgresql-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" libzstd-dev liblz4-dev \
    libcurl4-openssl-dev libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev \
    make gcc patch curl ca-certificates || exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
rm -rf "$build_root"
mkdir -p "$build_root"
archive="$build_root/citus-${CITUS_VERSION}.tar.gz"
if [[ -f "$VENDOR_DIR/citus-${CITUS_VERSION}.tar.gz" ]]; then
  say "source from $VENDOR_DIR"
  cp "$VENDOR_DIR/citus-${CITUS_VERSION}.tar.gz" "$archive"
else
  say "no vendored source; downloading $UPSTREAM_URL"
  curl -fsSL --retry 3 -o "$archive" "$UPSTREAM_URL" || {
    echo "ensure-citus: download failed" >&2
    manual_help >&2
    exit 1
  }
fi
actual="$(sha256sum "$archive" | cut -d' ' -f1)"
if [[ "$actual" != "$CITUS_SHA256" ]]; then
  echo "ensure-citus: checksum mismatch for the Citus ${CITUS_VERSION} source archive:" >&2
  echo "  expected $CITUS_SHA256" >&2
  echo "  got      $actual" >&2
  echo "  refusing to build it." >&2
  exit 1
fi
say "checksum verified ($actual)"

tar xzf "$archive" -C "$build_root"
src="$build_root/citus-${CITUS_VERSION}"
# Debian's postgresql-15 exports have_createdb_privilege, which Citus also defines statically.
if grep -q '^have_createdb_privilege(void)' "$src/src/include/pg_version_compat.h"; then
  header="$src/src/include/pg_version_compat.h"
  if [[ -f "$VENDOR_DIR/pg15-have-createdb-privilege.patch" ]]; then
    (cd "$src" && patch -p1 <"$VENDOR_DIR/pg15-have-createdb-privilege.patch" >/dev/null)
  else
    # The same rename as the vendored patch: Citus's static copy becomes
    # citus_compat_have_createdb_privilege, and a macro sends Citus's calls to it.
    line=$(grep -n '^have_createdb_privilege(void)' "$header" | cut -d: -f1)
    sed -i -e "${line}s/^have_createdb_privilege/citus_compat_have_createdb_privilege/" \
      -e "$((line - 1))i #define have_createdb_privilege() citus_compat_have_createdb_privilege()" \
      "$header"
  fi
  say "patched pg_version_compat.h (have_createdb_privilege)"
fi
log="$build_root/build.log"
say "configure, make, make install (log: $log)"
(
  cd "$src"
  ./configure PG_CONFIG="$bindir/pg_config" >"$log" 2>&1
  make -j"$(nproc)" >>"$log" 2>&1
  "${sudo[@]}" make install >>"$log" 2>&1
) || {
  echo "ensure-citus: the build failed; the last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}
if ! installed; then
  echo "ensure-citus: make install finished but citus.so is not where PostgreSQL looks for it." >&2
  exit 1
fi
rm -rf "$src"
say "installed Citus ${CITUS_VERSION} into PostgreSQL ${PG_MAJOR}"
