#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh machine with Python 3.11 and pip:
# system tools the tests use as real peers, then a virtualenv with specbridge and its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v storescu >/dev/null && command -v echoscu >/dev/null || need+=(dcmtk)
command -v curl >/dev/null || need+=(curl)
# the dashboard test drives Debian's Chromium (Playwright's own browser download is never used)
command -v chromium >/dev/null || need+=(chromium fonts-liberation)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]} (needs apt-get as root)" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import engine, msgspec, aiohttp, lxml, gmssl, pynetdicom, aiosqlite, zeep, prometheus_client, playwright, PIL" 
