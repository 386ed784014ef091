#!/usr/bin/env bash
# Runs the whole test suite under ThreadSanitizer. Not part of CI (see the README for how
# long it takes); run it before resolving anything that touches threads or shared state.
#
# TSan only understands CAF's mailboxes if CAF itself is instrumented, so this builds
# Debian's CAF 0.17.6 source (fetched with apt-get source, cached) with -fsanitize=thread
# into $dir/caf-prefix, then vox-caf against it with -DVOX_SANITIZE=thread.
#   VOX_TSAN_BUILD_DIR   build tree (default: build-tsan beside this script's checkout)
#   VOX_JOBS             parallel jobs (default: nproc)
#   extra arguments      passed to ctest (e.g. -R channel)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
jobs="${VOX_JOBS:-$(nproc)}"
dir="${VOX_TSAN_BUILD_DIR:-$root/build-tsan}"
caf_version=0.17.6
prefix="$dir/caf-prefix"
mkdir -p "$dir"
started=$SECONDS

if [ ! -f "$prefix/lib/libcaf_core.so" ]; then
  src="$dir/caf-src"
  mkdir -p "$src"
  tarball="$src/actor-framework_${caf_version}.orig.tar.gz"
  if [ ! -f "$tarball" ]; then
    # Debian's source package: the same code as the libcaf-dev this project builds with.
    list=/etc/apt/sources.list.d/vox-caf-src.sources
    if ! apt-get source --print-uris actor-framework >/dev/null 2>&1; then
      printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$list"
      apt-get update -qq
    fi
    url="$(apt-get source --print-uris actor-framework | grep -o "'[^']*orig.tar.gz'" | tr -d "'")"
    [ -n "$url" ] || { echo "tsan.sh: apt-get source lists no CAF tarball" >&2; exit 1; }
    curl -fsSL -o "$tarball.part" "$url"
    mv "$tarball.part" "$tarball"
  fi
  rm -rf "$src/actor-framework-$caf_version"
  tar -xzf "$tarball" -C "$src"
  # GCC 12 needs <limits> where CAF 0.17.6 forgot it (Debian carries the same fix).
  sed -i 's|^#include <cstddef>$|#include <cstddef>\n#include <limits>|' \
    "$src/actor-framework-$caf_version/libcaf_io/caf/io/network/receive_buffer.hpp"
  echo "== CAF $caf_version with ThreadSanitizer =="
  cmake -S "$src/actor-framework-$caf_version" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    -DCAF_NO_EXAMPLES=yes -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_OPENSSL=yes -DCAF_NO_TOOLS=yes \
    -DCAF_NO_PYTHON=yes -DCAF_NO_OPENCL=yes -DCAF_NO_BENCHMARKS=yes -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
  cmake --build "$src/build" -j "$jobs" --target libcaf_core_shared libcaf_io_shared
  # Headers and the two libraries only (the install target would want every part built).
  mkdir -p "$prefix/include" "$prefix/lib"
  cp -r "$src/actor-framework-$caf_version/libcaf_core/caf" "$src/actor-framework-$caf_version/libcaf_io/caf" "$prefix/include/"
  cp "$src/build/libcaf_core/caf/detail/build_config.hpp" "$prefix/include/caf/detail/"
  cp -P "$src/build/lib/"libcaf_core.so* "$src/build/lib/"libcaf_io.so* "$prefix/lib/"
  echo "tsan.sh: CAF built in $((SECONDS - started)) s"
fi

echo "== vox-caf under ThreadSanitizer =="
phase=$SECONDS
cmake -S "$root" -B "$dir/vox" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON -DVOX_SANITIZE=thread \
  -DVOX_BUILD_BENCH=OFF -DVOX_CAF_PREFIX="$prefix" >/dev/null
cmake --build "$dir/vox" -j "$jobs"
echo "tsan.sh: vox-caf built in $((SECONDS - phase)) s"
phase=$SECONDS
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/scripts/tsan.supp"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
(cd "$dir/vox" && ctest -j "$jobs" --output-on-failure --timeout 900 "$@")
echo "tsan.sh: tests ran in $((SECONDS - phase)) s"
