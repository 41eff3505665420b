#!/usr/bin/env bash
# A short look at cryo: a counting bash loop is dumped (it disappears), restored with the same
# PID, and counts on from where it stopped. Builds cryo first (scripts/setup.sh). Needs root.
#   CRYO_BUILD_DIR=dir   build directory (default ./build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CRYO_BUILD_DIR:-build}
cryo=$build/src/cli/cryo

bold=$'\e[1m' reset=$'\e[0m'
if [ ! -t 1 ]; then bold='' reset=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
run() { printf '$ %s\n' "$*"; "$@"; }
# Waits (at most 10 s) until a process has ended and been reaped, or only its zombie is left.
wait_gone() {
  local state
  for _ in $(seq 200); do
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
    if [ -z "$state" ] || { [ "$state" = Z ] && [ "${2:-}" = zombie-ok ]; }; then return 0; fi
    sleep 0.05
  done
  return 1
}

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: cryo needs root (ptrace, clone3 with set_tid); run: sudo bash scripts/demo.sh" >&2
  exit 1
fi

say "Building cryo (scripts/setup.sh)"
bash scripts/setup.sh | tail -n 1

demo=$(mktemp -d /tmp/cryo-demo.XXXXXX)
counter=$demo/counter.log
loop_pid=''
# The loop is ours to stop, by PID, only if it is still our loop.
cleanup() {
  if [ -n "$loop_pid" ] && grep -qs 'cryo-demo-counter' "/proc/$loop_pid/cmdline"; then
    kill -9 "$loop_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

say "1. Start a counter: a bash loop appending 1, 2, 3, ... to $counter every 0.2 s"
# Its stdin is a pipe nobody writes to: `read -t 0.2` on it is the sleep, so the loop is a
# single process with no child (a `sleep` child would make it a process tree).
# It first closes any fd above 2 it inherited: the demo is about the counter, not about what
# the calling shell happened to leave open.
exec {pipe}<> <(:)
# shellcheck disable=SC2016  # expanded by the loop's own bash
loop=': cryo-demo-counter
for fd in /proc/self/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd<&-"; fi; done
i=0; while :; do i=$((i+1)); echo "$i"; read -t 0.2; done'
setsid bash -c "$loop" <&"$pipe" >>"$counter" 2>"$demo/loop.err" &
loop_pid=$!
disown "$loop_pid"  # still our child (bash reaps it), but no "Killed" job notice later
sleep 1.5
run ps -o pid,ppid,stat,comm -p "$loop_pid"
echo "counter so far: $(tr '\n' ' ' <"$counter")"
sleep 1
echo "a second later: $(tr '\n' ' ' <"$counter")"

say "2. Dump it: freeze, write its state to $demo/images, kill it"
run "$cryo" dump -t "$loop_pid" -D "$demo/images"
wait_gone "$loop_pid" || true  # bash reaps its child: the PID must be free for the restore
run ls -l "$demo/images"
run du -sh "$demo/images"

say "3. It is gone, and the counter stopped"
if ps -p "$loop_pid" >/dev/null; then
  echo "demo: pid $loop_pid still exists" >&2
  exit 1
fi
echo "no process $loop_pid"
stopped=$(tail -n 1 "$counter")
sleep 1
echo "counter stopped at $stopped; a second later it is still $(tail -n 1 "$counter")"

say "4. Restore it: same PID, same memory, same open files, running again"
run "$cryo" restore -D "$demo/images" -d <&"$pipe"
run ps -o pid,ppid,stat,comm -p "$loop_pid"
sleep 1.5

say "5. The counter went on from $stopped, not from 1"
first=$((stopped > 3 ? stopped - 3 : 1))
echo "lines $first..$((stopped + 4)) of $counter:"
sed -n "${first},$((stopped + 4))p" "$counter" | sed 's/^/  /'
if awk 'NR != $1 { bad = 1 } END { exit bad }' "$counter"; then
  echo "all $(wc -l <"$counter") lines are 1, 2, 3, ... without a gap or a repeat"
else
  echo "demo: the counter has a gap or a repeat" >&2
  exit 1
fi

say "6. Stop it (by its PID)"
run kill "$loop_pid"
# Not our child any more (restored under cryo, which exited): init reaps it, maybe lazily.
wait_gone "$loop_pid" zombie-ok || echo "demo: pid $loop_pid did not stop" >&2
echo "pid $loop_pid stopped at $(tail -n 1 "$counter")"
loop_pid=''
rm -rf "$demo"
say "Done."
