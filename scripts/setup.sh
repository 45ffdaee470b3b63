#!/usr/bin/env bash
# Set up everything bpfnb needs on a fresh Debian machine, idempotently:
#   - clang, llvm, libbpf-dev (headers), bpftool from Debian when missing
#   - tracefs and bpffs mounted when missing
#   - a Python 3.11 virtual environment in .venv with bpfnb and its test extras
# Usage: scripts/setup.sh [--browser]   (--browser also installs Debian's chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v llvm-strip >/dev/null 2>&1 || command -v llvm-objdump >/dev/null 2>&1 || need_apt+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
command -v bpftool >/dev/null 2>&1 || [ -x /usr/sbin/bpftool ] || need_apt+=(bpftool)
command -v make >/dev/null 2>&1 || need_apt+=(make)
# gcc and the Python headers build the optional C copy loop of the ring buffer consumer
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" = "--browser" ]; then
  sh scripts/install-browser.sh
fi

# tracefs (tracepoint attach needs it) and bpffs (pinning); mount when missing.
if [ "$(id -u)" = 0 ]; then
  if [ ! -d /sys/kernel/tracing/events ]; then
    log "mounting tracefs at /sys/kernel/tracing"
    mount -t tracefs tracefs /sys/kernel/tracing || echo "could not mount tracefs" >&2
  fi
  if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" {found=1} END {exit !found}' /proc/mounts; then
    log "mounting bpffs at /sys/fs/bpf"
    mount -t bpf bpf /sys/fs/bpf || echo "could not mount bpffs" >&2
  fi
fi

# Python 3.11 (pylibbpf 0.0.6 ships a CPython 3.11 wheel).
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$(command -v "$candidate"); break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  log "no Python 3.11 found; installing Debian's python3.11"
  if [ "$(id -u)" != 0 ]; then
    echo "Python 3.11 is missing: sudo apt-get install -y python3.11 python3.11-venv" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  PYTHON=$(command -v python3.11)
fi
# Python headers for the optional C extension (best effort: bpfnb works without it)
if ! "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install python3.11-dev (headers for the C copy loop)"
    apt-get install -y -qq python3.11-dev >/dev/null || log "python3.11-dev not installed"
  fi
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.bpfnb-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] ||
   [ bpfnb/kernel/streams/_ringcopy.c -nt "$stamp" ]; then
  log "pip install -e .[test]"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
if .venv/bin/python -c 'import sys; from bpfnb.kernel.streams import ringcopy; sys.exit(not ringcopy.AVAILABLE)'; then
  log "ring buffer copy loop: C extension built"
else
  log "ring buffer copy loop: C extension NOT built (no gcc/python3.11-dev?): using numpy"
fi
log "ready: $(.venv/bin/python --version), $(clang --version | head -1)"
