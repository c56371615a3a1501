#!/usr/bin/env bash
# Make Debian's Firefox ESR available at /usr/bin/firefox-esr for the dashboard's Firefox test, idempotently.
#
# tests/e2e/test_dashboard_firefox.py drives Firefox through its built-in remote protocol (Marionette)
# with the marionette-driver Python package. Playwright needs a patched Firefox build of its own that
# cannot be downloaded here, so the test uses Debian's firefox-esr instead.
#
#   1. /usr/bin/firefox-esr exists         -> say so, done.
#   2. else, as root with apt-get (CI)     -> apt-get install firefox-esr (apt-get update first if the
#                                             package lists do not know it yet).
#   3. else                                -> explain what to install and exit 1.
set -euo pipefail

FIREFOX=/usr/bin/firefox-esr
say() { printf 'ensure-firefox: %s\n' "$*"; }

if [[ -x $FIREFOX ]]; then
    say "$FIREFOX is there"
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "$FIREFOX is missing; install Debian's firefox-esr package (apt-get install firefox-esr) as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
say "installing firefox-esr with apt-get"
if ! apt-get install -y --no-install-recommends firefox-esr; then
    apt-get update
    apt-get install -y --no-install-recommends firefox-esr
fi
if [[ ! -x $FIREFOX ]]; then
    say "apt-get finished but $FIREFOX is still missing" >&2
    exit 1
fi
say "installed $($FIREFOX --version 2>/dev/null || echo firefox-esr)"
