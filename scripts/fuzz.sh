#!/usr/bin/env bash
# Coverage-guided fuzzing: builds tests/fuzz as libFuzzer targets with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer (build-fuzz/, VOX_FUZZ_BUILD_DIR), then runs each target
# for SECONDS (default 60) on a copy of its seed corpus. Findings (crash-*, timeout-*,
# leak-* files) land in build-fuzz/findings/<target>/; new inputs in build-fuzz/corpus/.
# Not part of CI.   scripts/fuzz.sh [SECONDS] [TARGET…]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(fuzz_message fuzz_handshake fuzz_prologue_and_framing fuzz_session fuzz_zstd_frames)
"$root/scripts/deps.sh" fuzz
build="${VOX_FUZZ_BUILD_DIR:-$root/build-fuzz}"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_FUZZ=ON \
  -DVOX_SANITIZE=ON -DVOX_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  echo "== $t: ${seconds} s =="
  # -timeout: an input that takes 10 s is a hang; rss_limit bounds what one input may allocate.
  if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" 2>"$build/$t.log"; then
    echo "$t: FINDING (see $build/$t.log and $findings/)"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added|cov:" "$build/$t.log" | tail -3 || true
done
exit $status
