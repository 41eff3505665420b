#!/usr/bin/env python3
"""e2e: real programs that are trees of processes, dumped mid-work and restored (without -d:
cryo relays the root's status), must finish with the right result.

  tree_programs.py --cryo BIN --workdir DIR --scenario jobs|pipeline|make

  jobs      a bash script starts three background jobs (subshells counting to 200 with
            `sleep 0.01`, appending to a log each) and a `sleep`, then `wait`s and collects
            their results: every log is exactly 1..200 and all three jobs report done
  pipeline  `producer | consumer` in bash: the producer has written 3000 lines into the pipe
            that the consumer has not read yet when the tree is dumped; after the restore it
            writes 3000 more and the consumer's md5sum of its stdin must be that of all 6000
  make      `make -j2` of a generated project (8 C files, each long enough that gcc is still
            running when the tree is dumped): it finishes and the program it built prints the
            expected sum

Gates are files in the workdir (`go`): the programs wait for it after the dump point, so the
dump always catches them mid-work.
"""

import hashlib
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, TestSkip, log  # noqa: E402

GATE = 'while [ ! -e go ]; do sleep 0.01; done'

JOBS = f"""
for j in 1 2 3; do
  ( n=0; while [ $n -lt 200 ]; do n=$((n+1)); echo $n >> job$j.log
      [ $n -eq 20 ] && {{ {GATE}; }}; sleep 0.01; done; echo done$j > job$j.out ) &
done
sleep 0.5 &
wait
cat job1.out job2.out job3.out > all.out
"""

PIPELINE = f"""
( i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "line $i"; done; touch half
  {GATE}; while [ $i -lt 6000 ]; do i=$((i+1)); echo "line $i"; done ) |
( {GATE}; md5sum > result.txt )
"""

N_FILES = 8
FUNCS_PER_FILE = 600


def make_project(d):
    os.makedirs(d)
    for f in range(N_FILES):
        with open(os.path.join(d, f"part{f}.c"), "w") as out:
            for i in range(FUNCS_PER_FILE):
                out.write(f"static long f{i}(long x) {{ return x * {i + 3} + {f}; }}\n")
            out.write(f"long part{f}(void) {{ long s = 0;\n")
            for i in range(FUNCS_PER_FILE):
                out.write(f"  s += f{i}({i});\n")
            out.write("  return s; }\n")
    with open(os.path.join(d, "main.c"), "w") as out:
        out.write("#include <stdio.h>\n")
        for f in range(N_FILES):
            out.write(f"long part{f}(void);\n")
        out.write("int main(void) { long s = 0;\n")
        for f in range(N_FILES):
            out.write(f"  s += part{f}();\n")
        out.write('  printf("%ld\\n", s); return 0; }\n')
    objs = " ".join(f"part{f}.o" for f in range(N_FILES))
    with open(os.path.join(d, "Makefile"), "w") as out:
        out.write(f"all: app\napp: main.o {objs}\n\tgcc -o $@ $^\n")
        out.write("%.o: %.c\n\tgcc -O1 -c -o $@ $<\n")
    expected = 0
    for f in range(N_FILES):
        expected += sum(i * (i + 3) + f for i in range(FUNCS_PER_FILE))
    return expected


def lines_exactly(path, n):
    with open(path) as f:
        got = f.read().split("\n")[:-1]
    want = [str(i) for i in range(1, n + 1)]
    if got != want:
        bad = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), n))
        raise TestFailure(f"{path}: {len(got)} lines, first difference at line {bad + 1}")


def wait_for(cond, timeout, what, proc):
    limit = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            proc.drain()
            raise TestFailure(f"{what}: the program ended ({proc.poll()}): {proc.stderr[-500:]}")
        if time.monotonic() > limit:
            raise TestFailure(f"{what}: not reached after {timeout} s")
        time.sleep(0.01)


def body(h, scenario):
    h.check_cryo_binary()
    env = {k: v for k, v in os.environ.items() if k not in ("BASH_ENV", "ENV", "CRYO_E2E_INNER")}
    cwd = h.workdir
    expected = None
    if scenario == "jobs":
        argv = ["/bin/bash", "-c", JOBS]
        ready = lambda: all(  # noqa: E731
            os.path.exists(h.path(f"job{j}.log")) and len(open(h.path(f"job{j}.log")).read()) > 50
            for j in (1, 2, 3)
        )
    elif scenario == "pipeline":
        argv = ["/bin/bash", "-c", PIPELINE]
        ready = lambda: os.path.exists(h.path("half"))  # noqa: E731
    else:
        if subprocess.run(["sh", "-c", "command -v gcc && command -v make"],
                          capture_output=True).returncode != 0:
            raise TestSkip("gcc and make (build-essential) are not installed")
        cwd = h.path("project")
        expected = make_project(cwd)
        argv = ["make", "-j2"]
        ready = lambda: any(  # noqa: E731
            os.path.exists(os.path.join(cwd, f"part{f}.o")) for f in range(N_FILES)
        )
    e2elib.log_cmd(argv)
    orig = h.start(scenario, argv, program=True, cwd=cwd, env=env, new_session=True)
    pid = orig.pid
    wait_for(ready, 60, "the dump point", orig)
    tree = e2elib.descendants(pid)
    log(f"{scenario}: pid {pid} with {len(tree)} descendants at the dump point")

    images = h.path("images")
    e2elib.expect_cryo_ok(h.run_cryo("dump", "-t", str(pid), "-D", images), f"dump of {scenario}")
    h.wait_gone(pid, proc=orig)
    # The dump took whatever existed at that moment (a `sleep` may have started since `tree`).
    limit = time.monotonic() + 10
    while any(e2elib.pid_exists(p) for p in e2elib.descendants(1) if p not in
              {q.popen.pid for q in h.procs} and e2elib.proc_state(p) == "Z"):
        e2elib.reap_orphans(h)
        if time.monotonic() > limit:
            break
        time.sleep(0.01)
    for p in tree:
        h.wait_gone(p)

    restorer = h.start("cryo restore", h.cryo_cmd("restore", "-D", images), cwd=cwd)
    time.sleep(0.2)
    open(h.path("go"), "w").close()
    rc = restorer.wait(h.remaining(120))
    restorer.drain()
    if rc != 0:
        raise TestFailure(
            f"cryo restore of {scenario}: {e2elib.describe_status(rc)}: "
            f"{e2elib.last_line(restorer.stderr)}"
        )

    if scenario == "jobs":
        for j in (1, 2, 3):
            lines_exactly(h.path(f"job{j}.log"), 200)
        with open(h.path("all.out")) as f:
            if f.read() != "done1\ndone2\ndone3\n":
                raise TestFailure("the jobs' results are not all there")
        log("jobs: every job counted 1..200 without a gap and the script collected all three")
    elif scenario == "pipeline":
        want = hashlib.md5("".join(f"line {i}\n" for i in range(1, 6001)).encode()).hexdigest()
        with open(h.path("result.txt")) as f:
            got = f.read().split()[0]
        if got != want:
            raise TestFailure(f"the consumer read {got}, expected md5 {want}")
        log("pipeline: the consumer got all 6000 lines exactly once")
    else:
        out = subprocess.run([os.path.join(cwd, "app")], capture_output=True, text=True)
        if out.returncode != 0 or out.stdout.strip() != str(expected):
            raise TestFailure(f"the built program printed {out.stdout.strip()!r}, want {expected}")
        log(f"make: build finished after the restore; the program prints {expected}")


def main():
    parser = e2elib.common_args(__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["jobs", "pipeline", "make"], required=True)
    args = parser.parse_args()
    e2elib.enter_pid_namespace()
    h = e2elib.Harness(args)
    h.finish(lambda: body(h, args.scenario))


if __name__ == "__main__":
    main()
