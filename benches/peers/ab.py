"""Two or more clients against each other, interleaved, many runs: wall (spawn to exit) and CPU
(wait4's user + sys), medians and quartiles. For a before/after comparison of one change, or a
closer look at one row of run.py, whose short rows spread by tens of percent run to run.

    python3 benches/peers/ab.py [--runs N] [--expect TEXT] COMMAND COMMAND ...

Each COMMAND is one shell word: a command line, optionally led by NAME=VALUE environment
settings ("MAILCAT_X=1 target/release/peer_mailcat_imap bench4k@example.test"). A client
that exits non-zero, or whose stdout lacks --expect, stops the comparison. Run the clients in
both orders: the one that follows another may pay for its server's teardown.

Example (the IMAP library row, after `eval "$(tests/lab/lab.sh env)"` and a seed of 2,000 x 4 KiB):
    MAILCAT_PASSWORD=$MAILCAT_LAB_BENCH_PASSWORD python3 benches/peers/ab.py --runs 100 \\
        --expect "messages=2000 " "target/release/peer_async_imap bench4k@example.test" \\
        "target/release/peer_mailcat_imap bench4k@example.test"
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def split(command):
    """(environment, argv) of one COMMAND."""
    words, env = shlex.split(command), dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith(("/", ".")):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if not words:
        sys.exit(f"ab.py: no command in {command!r}")
    return env, words


def run(env, argv, expect):
    """(wall ms, CPU ms) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0 or (expect and expect.encode() not in out):
        sys.exit(f"ab.py: {shlex.join(argv)} failed (exit {os.waitstatus_to_exitcode(status)}): "
                 f"{out[-500:]!r}")
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--expect", help="text every client's stdout must contain")
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args()
    if len(args.commands) < 2 or args.runs < 4:
        parser.error("give two commands or more, and --runs 4 or more")
    clients = [(c, *split(c)) for c in args.commands]
    samples = {c: [] for c in args.commands}
    for _ in range(args.runs):
        for command, env, argv in clients:
            samples[command].append(run(env, argv, args.expect))
    first = None
    for command in args.commands:
        wall = [s[0] for s in samples[command]]
        cpu = [s[1] for s in samples[command]]
        w, c = statistics.median(wall), statistics.median(cpu)
        first = first or (w, c)
        wq, cq = statistics.quantiles(wall), statistics.quantiles(cpu)
        print(f"{command}\n    wall {w:7.1f} ms (quartiles {wq[0]:.1f}-{wq[2]:.1f}) "
              f"x{w / first[0]:.3f}   CPU {c:6.1f} ms ({cq[0]:.1f}-{cq[2]:.1f}) "
              f"x{c / first[1]:.3f}")


if __name__ == "__main__":
    main()
