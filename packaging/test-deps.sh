#!/usr/bin/env bash
# `make test`: the system packages the tests run for real (restic and borg backups, a CUPS server for
# printer queues, iproute2 and procps (sysctl) for network namespaces, systemd-analyze for the units, Pango for the PDF
# value report and pdftoppm to look at it, Chromium for the dashboard's browser tests, PostgreSQL for a
# throw-away cluster the store tests start, libfaketime for `make test-dates`, nginx and Caddy for the reverse
# proxy snippets in packaging/README.md, ClamAV's clamscan and nftables (with util-linux's unshare) for the
# security_center check's real runs, gcc and libc6-dev to build the power-cut shim of tests/faults).
# Installed when run as root; otherwise listed.
set -euo pipefail
packages=(restic borgbackup cups cups-client iproute2 procps systemd
          libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils fonts-dejavu-core chromium
          postgresql faketime nginx-light caddy
          clamav nftables util-linux gcc libc6-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "the tests need these packages; install them as root: apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "installing ${missing[*]} for the tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
