#!/usr/bin/env bash
# Builds vox-caf and runs the whole test suite twice: a normal build, then under
# AddressSanitizer + UndefinedBehaviorSanitizer. Installs missing packages first.
# The I/O loops' epoll fallback: the [io] tests run on both backends here, and
# `VOX_IO_BACKEND=epoll ctest` in a build tree runs everything on epoll (about 80 s, left
# out to keep .ci/run under 30 minutes).
# Build trees go to build/ and build-asan/ (override with VOX_BUILD_DIR / VOX_ASAN_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
jobs="${VOX_JOBS:-$(nproc)}"
# Line tables only (-g1): full debug info is most of the compile time of CAF-heavy
# sources, and a failing test needs file:line, not variables. The sanitizer build uses
# -Og: one test source took 98 s to compile with -O2 -g under ASan and 32 s with -Og -g1,
# and those tests wait on sockets and actors, not on the CPU.
run_suite() {
  local dir="$1" flags="$2"; shift 2
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$flags" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 300)
}
echo "== vox-caf: test suite =="
run_suite "${VOX_BUILD_DIR:-$root/build}" "-O2 -g1 -DNDEBUG"
echo "== vox-caf: test suite under ASan + UBSan =="
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
run_suite "${VOX_ASAN_BUILD_DIR:-$root/build-asan}" "-Og -g1" -DVOX_SANITIZE=ON -DVOX_BUILD_BENCH=OFF
