#!/bin/sh
# Install Debian's Chromium for the browser test (never `playwright install`).
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -eu

if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get not found; install Chromium at /usr/bin/chromium by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends chromium
fi
/usr/bin/chromium --version
