#!/usr/bin/env bash
# Fails if any C++ source under src/ is not clang-formatted (.clang-format at the root).
# Usage: scripts/check-format.sh [repo root]. Exit 0 clean, 1 not formatted, 77 no clang-format.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
if ! command -v clang-format >/dev/null; then
  echo "SKIP: clang-format is not installed"
  exit 77
fi
mapfile -d '' files < <(find src \( -name '*.h' -o -name '*.cc' \) -type f -print0 | sort -z)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no sources under src/"
  exit 0
fi
if clang-format --dry-run --Werror "${files[@]}"; then
  echo "clang-format: ${#files[@]} files clean"
else
  echo "clang-format: some files differ; fix with: clang-format -i <file>"
  exit 1
fi
