#!/bin/sh
# Builds train.wasm (or the path given as $1) from train.c with Debian 12's clang 14, lld and
# wasi-libc (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32). No debug info, no
# names, no producers section: two builds give identical bytes, and the committed train.wasm is
# checked against a fresh build by sgl-sandbox's tests. -ffp-contract=off: no fused multiply-add
# anywhere, so a native build of train.c computes the same floats (see README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/train.wasm}
clang --target=wasm32-wasi -O2 -msimd128 -Wall -Wextra -Werror -ffp-contract=off -fno-math-errno -Wl,--strip-all \
    -o "$out" "$here/train.c"
