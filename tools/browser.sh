#!/usr/bin/env bash
# Chromium and its WebDriver for the console's browser tests (tests/e2e/test_console.py), from
# the Debian/Ubuntu packages `chromium` and `chromium-driver`: Selenium drives the system's
# chromedriver, and nothing is downloaded at test time. `make test` and `make test-e2e` run
# this first; it does nothing when both are on the PATH.
set -euo pipefail
if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "The browser tests need Chromium and chromedriver on the PATH (no apt-get here:" \
         "install them with your system's package manager)." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "Installing Chromium needs root: run 'apt-get install chromium chromium-driver' as root." >&2
        exit 1
    fi
    sudo="sudo"
fi
echo "Installing Chromium and chromedriver for the browser tests (apt-get)…"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver
