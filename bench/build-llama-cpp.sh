#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-batched-bench for this machine's native ISA into
# bench/.cache/llama.cpp/, as the baselines the inference benchmark measures in the same run
# (bench/llama-cpp.ts), and llama-simple (greedy continuation) and llama-perplexity, with which
# scripts/check-export.sh checks that llama.cpp reads exported GGUF files as llama2 does. The source comes from the npm registry: the node-llama-cpp package ships
# llama.cpp's release as a git bundle (llama/gitRelease.bundle). Needs git, cmake and a C++
# compiler; takes ~15 min on two cores. The build directory is configured in place
# (bench/.cache/llama.cpp/build), so a later run builds only what is missing.
#
#   bash bench/build-llama-cpp.sh [node-llama-cpp version, default 3.21.1]
set -euo pipefail
version="${1:-3.21.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/bench/.cache/llama.cpp"
work="$root/bench/.cache/llama.cpp-src.tmp"
targets=(llama-bench llama-batched-bench llama-simple llama-perplexity)

for tool in git cmake c++ npm tar; do
  command -v "$tool" >/dev/null || { echo "build-llama-cpp: '$tool' is needed and was not found" >&2; exit 1; }
done
missing=()
for t in "${targets[@]}"; do [ -x "$dest/build/bin/$t" ] || missing+=("$t"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "already built: ${targets[*]/#/$dest/build/bin/}"
  exit 0
fi

if [ ! -f "$dest/CMakeLists.txt" ]; then
  rm -rf "$work" && mkdir -p "$work"
  echo "fetching node-llama-cpp@$version (for its llama.cpp source bundle) ..."
  (cd "$work" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
  tar -xzf "$work"/node-llama-cpp-*.tgz -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  echo "llama.cpp release: $(cat "$work/package/llama/llama.cpp.info.json" | tr -d '\n ')"
  git -c advice.detachedHead=false clone -q "$work/package/llama/gitRelease.bundle" "$work/src"
  rm -rf "$dest" && mkdir -p "$(dirname "$dest")" && mv "$work/src" "$dest" && rm -rf "$work"
fi
# an older version of this script configured the build elsewhere and moved it here: CMake
# caches are tied to their source path, so such a build directory is configured anew
if [ -f "$dest/build/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$dest" "$dest/build/CMakeCache.txt"; then
  rm -rf "$dest/build"
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$dest/build/CMakeCache.txt" ] || cmake -S "$dest" -B "$dest/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$dest/build" --target "${missing[@]}" -j "$(nproc)"
echo "built: ${missing[*]/#/$dest/build/bin/}"
