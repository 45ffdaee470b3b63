#!/usr/bin/env bash
# Install what the BCC-python baselines of the benchmarks need, on Debian, idempotently:
#   - python3-bpfcc (BCC for the *system* Python, /usr/bin/python3)
#   - linux-headers-amd64 (BCC compiles its programs against kernel headers)
# then merge Debian's two header trees (-common and -amd64) into one directory, which
# the benchmarks pass to BCC as BCC_KERNEL_SOURCE, and print that directory.
#
# `make bench` runs this first. It never fails the benchmark run: when something cannot
# be installed (not root, no apt, no network) it says why on stderr and exits 0 without
# printing a directory; the benchmarks then report BCC as absent.
set -uo pipefail

log() { printf '[setup-bcc] %s\n' "$*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  log "no apt-get: BCC baselines will be absent"
  exit 0
fi
need=()
/usr/bin/python3 -c 'import bcc' >/dev/null 2>&1 || need+=(python3-bpfcc)
compgen -G '/usr/src/linux-headers-*-common' >/dev/null || need+=(linux-headers-amd64)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need[*]} and not root: BCC baselines will be absent"
    exit 0
  fi
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    log "apt-get install ${need[*]} failed: BCC baselines will be absent"
    exit 0
  fi
fi

common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -1)
[ -n "$common" ] || { log "no /usr/src/linux-headers-*-common"; exit 0; }
flavour=${common%-common}-amd64
[ -d "$flavour" ] || { log "no $flavour"; exit 0; }
merged=${TMPDIR:-/tmp}/bpfnb-bcc-$(basename "${common%-common}")
if [ ! -f "$merged/.complete" ]; then
  rm -rf "$merged"
  mkdir -p "$merged"
  # -L: the -amd64 tree links into /usr/lib and into -common; copy what they point at.
  cp -rL "$common/." "$merged/" 2>/dev/null
  cp -rL "$flavour/." "$merged/" 2>/dev/null
  touch "$merged/.complete"
fi
echo "$merged"
