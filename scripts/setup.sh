#!/usr/bin/env bash
# Gets a fresh Debian 12 ready to build and test cryo, then configures and builds ./build
# (RelWithDebInfo, Ninja). Idempotent: packages already installed are not fetched again, and the
# build is incremental. Needs root (or sudo) only when packages are missing.
#   CRYO_BUILD_DIR=dir   build somewhere else than ./build
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build g++ pkg-config
  libprotobuf-dev protobuf-compiler libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev
  libzstd-dev liblz4-dev
  python3 binutils clang-format clang-tidy util-linux procps
  nftables redis-server redis-tools nginx iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update
  # redis-server and nginx are test subjects, not services: keep their packages from starting
  # them (a policy-rc.d that says no, only while installing, only if the machine has none).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  status=0
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${PACKAGES[@]}" || status=$?
  if [ "$own_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
  if [ "$status" -ne 0 ]; then exit "$status"; fi
else
  echo "setup: all ${#PACKAGES[@]} packages are installed"
fi

build=${CRYO_BUILD_DIR:-build}
if [ -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null  # keeps its generator
else
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build"
echo "setup: built in $build"
