"""Peak memory of a command's whole process tree, as summed RSS and as summed PSS (Linux).

A job that forks workers (``prune``'s Reduce Weight comparison) shares the pages it had
before the fork with them: the sum of their RSS counts those pages once per process, their
PSS (each shared page divided among its sharers) once in all. SLURM's default accounting
adds up RSS; the machine's memory holds the PSS. Samples every descendant of the command
from ``/proc`` every ``--interval`` seconds:

    python benchmarks/tree_memory.py --children-only -- snakemake --cores 2 --forcerun prune \\
        results/scale/pruning/summary.tsv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time


def parents() -> dict[int, int]:
    """pid -> parent pid of every process that can be read now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:  # gone since listed
            continue
        out[int(name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


def descendants(root: int, parent_of: dict[int, int]) -> set[int]:
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {p for p, q in parent_of.items() if q in frontier and p not in found}
        found |= frontier
    return found


def rss_pss_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument(
        "--children-only",
        action="store_true",
        help="leave the command's own process out (e.g. Snakemake itself, to measure its jobs)",
    )
    ap.add_argument("command", nargs=argparse.REMAINDER, help="after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command after --")
    proc = subprocess.Popen(command)
    peak_rss = peak_pss = most = 0
    while proc.poll() is None:
        tree = descendants(proc.pid, parents())
        if not args.children_only:
            tree.add(proc.pid)
        sizes = [rss_pss_kb(pid) for pid in tree]
        peak_rss = max(peak_rss, sum(r for r, _ in sizes))
        peak_pss = max(peak_pss, sum(p for _, p in sizes))
        most = max(most, len(tree))
        time.sleep(args.interval)
    print(
        f"peak summed RSS {peak_rss / 1024:.0f} MB, peak summed PSS {peak_pss / 1024:.0f} MB, "
        f"up to {most} processes, exit {proc.returncode}"
    )
    raise SystemExit(proc.returncode)


if __name__ == "__main__":
    main()
