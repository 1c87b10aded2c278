#!/usr/bin/env bash
# Install the Debian packages the test-suite uses (headless Chromium for the map tests,
# LibreOffice for the Excel check, fonts with CJK glyphs for the static maps, PostgreSQL +
# PostGIS for the database tests, GDAL's tools and validate_gpkg.py for the GeoPackage checks).
# Nothing is downloaded outside the package manager.
set -euo pipefail
want=(fonts-noto-cjk libreoffice-calc-nogui gdal-bin python3-gdal chromium postgresql postgresql-postgis)
missing=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "install_system_deps: not root and no sudo; missing ${missing[*]} (tests needing them will fail)" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
