#!/usr/bin/env bash
# Postfix's smtp-sink for notify's SMTP tests (tests/integration/test_smtp_pipelining.py) and
# the benches' SMTP sink (bench/sinks.py): a real SMTP server that advertises PIPELINING, as
# real relays do, and refuses or drops chosen commands on request. From the Debian/Ubuntu
# package `postfix` (installed without its recommends; the mail system itself need not run:
# smtp-sink is a program of its own), so nothing is downloaded at test time. `make test`,
# `make test-integration` and `make test-kafka` run this first; it does nothing when
# smtp-sink is installed (it lives in /usr/sbin, often not on a user's PATH).
set -euo pipefail
if PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v smtp-sink >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "notify's SMTP tests need Postfix's smtp-sink (no apt-get here: install the" \
         "'postfix' package with your system's package manager)." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "Installing smtp-sink needs root: run 'apt-get install --no-install-recommends postfix' as root." >&2
        exit 1
    fi
    sudo="sudo"
fi
echo "Installing Postfix's smtp-sink for notify's SMTP tests (apt-get)…"
$sudo apt-get update -qq
# No debconf question: postfix asks for its mail configuration when installed interactively.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postfix
