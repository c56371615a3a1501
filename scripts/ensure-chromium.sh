#!/usr/bin/env bash
# Make Debian's chromium available at /usr/bin/chromium for the dashboard's browser test, idempotently.
#
# tests/e2e/test_dashboard_browser.py drives a real browser with Playwright (the Python package). The
# browsers Playwright downloads itself need the internet, which these machines do not have, so the test
# points Playwright at Debian's chromium instead.
#
#   1. /usr/bin/chromium exists            -> say so, done.
#   2. else, as root with apt-get (CI)     -> apt-get install chromium (apt-get update first if the
#                                             package lists do not know it yet).
#   3. else                                -> explain what to install and exit 1.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
say() { printf 'ensure-chromium: %s\n' "$*"; }

if [[ -x $CHROMIUM ]]; then
    say "$CHROMIUM is there"
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "$CHROMIUM is missing; install Debian's chromium package (apt-get install chromium) as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
say "installing chromium with apt-get"
if ! apt-get install -y --no-install-recommends chromium; then
    apt-get update
    apt-get install -y --no-install-recommends chromium
fi
if [[ ! -x $CHROMIUM ]]; then
    say "apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
say "installed $($CHROMIUM --version 2>/dev/null || echo chromium)"
