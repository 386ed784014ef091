#!/usr/bin/env bash
# Builds vox-caf and runs the whole test suite twice: a normal build, then under
# AddressSanitizer + UndefinedBehaviorSanitizer. Installs missing packages first.
# Build trees go to build/ and build-asan/ (override with VOX_BUILD_DIR / VOX_ASAN_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
jobs="${VOX_JOBS:-$(nproc)}"
run_suite() {
  local dir="$1"; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 300)
}
echo "== vox-caf: test suite =="
run_suite "${VOX_BUILD_DIR:-$root/build}"
echo "== vox-caf: test suite under ASan + UBSan =="
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_suite "${VOX_ASAN_BUILD_DIR:-$root/build-asan}" -DVOX_SANITIZE=ON -DVOX_BUILD_BENCH=OFF
