#!/usr/bin/env bash
# Make one of Debian's browsers available for the dashboard's browser tests, idempotently:
#   scripts/ensure-browser.sh chromium      -> /usr/bin/chromium     (tests/e2e/test_dashboard_browser.py,
#                                               Playwright pointed at it: the browsers Playwright downloads
#                                               itself need the internet, which these machines lack)
#   scripts/ensure-browser.sh firefox-esr   -> /usr/bin/firefox-esr  (tests/e2e/test_dashboard_firefox.py,
#                                               driven over Marionette)
#
#   1. /usr/bin/<package> exists          -> say so, done.
#   2. else, as root with apt-get (CI)    -> apt-get install <package> (apt-get update first if the
#                                            package lists do not know it yet).
#   3. else                               -> explain what to install and exit 1.
set -euo pipefail

PACKAGE=${1:?usage: ensure-browser.sh chromium|firefox-esr}
case $PACKAGE in
    chromium | firefox-esr) ;;
    *) echo "ensure-browser: unknown browser $PACKAGE (chromium or firefox-esr)" >&2; exit 2 ;;
esac
BINARY=/usr/bin/$PACKAGE
say() { printf 'ensure-browser: %s\n' "$*"; }

if [[ -x $BINARY ]]; then
    say "$BINARY is there"
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "$BINARY is missing; install Debian's $PACKAGE package (apt-get install $PACKAGE) as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
say "installing $PACKAGE with apt-get"
if ! apt-get install -y --no-install-recommends "$PACKAGE"; then
    apt-get update
    apt-get install -y --no-install-recommends "$PACKAGE"
fi
if [[ ! -x $BINARY ]]; then
    say "apt-get finished but $BINARY is still missing" >&2
    exit 1
fi
say "installed $($BINARY --version 2>/dev/null || echo "$PACKAGE")"
