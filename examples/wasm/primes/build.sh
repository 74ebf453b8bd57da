#!/bin/sh
# Builds primes.wasm (or the path given as $1) from primes.c with Debian 12's clang 14, lld and
# wasi-libc (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32). No debug info, no
# names, no producers section: two builds give identical bytes, and the committed primes.wasm is
# checked against a fresh build by sgl-sandbox's tests.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/primes.wasm}
clang --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all -o "$out" "$here/primes.c"
