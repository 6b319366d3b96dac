#!/usr/bin/env bash
# Install everything labkit needs on a fresh Debian machine: system packages (SUNDIALS for Myokit's
# CVODES simulations, a C compiler, bubblewrap for the per-run sandbox), then labkit itself. `--test` adds the test tools, and Debian's
# Chromium for the dashboards' browser tests (Playwright drives /usr/bin/chromium; it never downloads
# a browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libsundials-dev gcc git bubblewrap)
if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
  APT_PACKAGES+=(chromium)
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
python3 -m pip install --quiet --disable-pip-version-check -e ".${extras}"
# The oxmeta ontology ships in chaste-codegen; its own dependencies are not needed (nor importable).
python3 -m pip install --quiet --disable-pip-version-check --no-deps "chaste-codegen==0.10.6"
# JupyterHub's proxy, for the hub service tests (tests/hub): an npm package, installed once.
if [ "${1:-}" = "--test" ] && ! command -v configurable-http-proxy >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO npm install --global --silent configurable-http-proxy
fi
