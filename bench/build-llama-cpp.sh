#!/usr/bin/env bash
# Builds llama.cpp's llama-bench for this machine's native ISA into bench/.cache/llama.cpp/, as the
# baseline the inference benchmark measures in the same run (bench/llama-cpp.ts). The source comes
# from the npm registry: the node-llama-cpp package ships llama.cpp's release as a git bundle
# (llama/gitRelease.bundle). Needs git, cmake and a C++ compiler; takes ~15 min on two cores.
#
#   bash bench/build-llama-cpp.sh [node-llama-cpp version, default 3.21.1]
set -euo pipefail
version="${1:-3.21.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/bench/.cache/llama.cpp"
work="$root/bench/.cache/llama.cpp-src.tmp"

for tool in git cmake c++ npm tar; do
  command -v "$tool" >/dev/null || { echo "build-llama-cpp: '$tool' is needed and was not found" >&2; exit 1; }
done
if [ -x "$dest/build/bin/llama-bench" ]; then
  echo "llama-bench already built: $dest/build/bin/llama-bench"
  exit 0
fi

rm -rf "$work" && mkdir -p "$work"
echo "fetching node-llama-cpp@$version (for its llama.cpp source bundle) ..."
(cd "$work" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
tar -xzf "$work"/node-llama-cpp-*.tgz -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
echo "llama.cpp release: $(cat "$work/package/llama/llama.cpp.info.json" | tr -d '\n ')"
git -c advice.detachedHead=false clone -q "$work/package/llama/gitRelease.bundle" "$work/src"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$work/src" -B "$work/src/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$work/src/build" --target llama-bench -j "$(nproc)"

rm -rf "$dest" && mv "$work/src" "$dest" && rm -rf "$work"
echo "built: $dest/build/bin/llama-bench"
