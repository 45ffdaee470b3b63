#!/bin/sh
# Rebuild the committed BPF objects of tests/data from their C sources.
# The pure tests read the .o files only, so they run without clang; run this after
# changing a .bpf.c file and commit both.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
for src in *.bpf.c; do
	obj=${src%.c}.o
	"$CLANG" -target bpf -g -O2 -mcpu=v3 -D__TARGET_ARCH_x86 -c "$src" -o "$obj"
	echo "built $obj"
done
