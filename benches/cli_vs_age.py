#!/usr/bin/env python3
"""The `strongroom` command against `age` and `cp` (issue 14, "Performance").

Wall clock of one round trip of a file (default 1 GiB, random bytes):
  strongroom  `strongroom backup ITEM FILE`, then `strongroom restore POINT
              -o OUT --force` (the vault fsyncs what it writes; the point is
              deleted afterwards, untimed)
  age         `age -e -r RECIPIENT -o FILE.age FILE`, `sync FILE.age`, then
              `age -d -i KEY -o OUT FILE.age`, `sync OUT`
  cp          `cp FILE COPY`, `sync COPY`, then `cp COPY OUT`, `sync OUT`

The three are interleaved, round after round (default 5), so that the
machine's drift falls on all of them alike; the median of each is printed,
with the ratios. Needs `age` (Debian: apt-get install age) and a release
build of the command:

  cargo build --release -p strongroom-cli
  python3 benches/cli_vs_age.py [--mib 1024] [--rounds 5] [--dir DIR]
"""

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument(
        "--strongroom",
        default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "strongroom"),
    )
    args = parser.parse_args()
    strongroom = os.path.abspath(args.strongroom)
    if not os.path.exists(strongroom):
        raise SystemExit(f"{strongroom} not found: cargo build --release -p strongroom-cli")
    if shutil.which("age") is None:
        raise SystemExit("age not found: apt-get install age")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data = os.path.join(tmp, "data.img")
        with open(data, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        out = os.path.join(tmp, "out.img")
        vault = os.path.join(tmp, "vault")
        sr = lambda *a: run(strongroom, "--quiet", "--vault", vault, *a)
        sr("init")
        sr("protect", "data")
        key = os.path.join(tmp, "age.key")
        run("age-keygen", "-o", key)
        recipient = run("age-keygen", "-y", key).stdout.strip()

        def strongroom_round():
            began = time.perf_counter()
            point = sr("backup", "data", data).stdout.strip()
            sr("restore", point, "-o", out, "--force")
            took = time.perf_counter() - began
            sr("delete", point)
            return took

        def age_round():
            sealed = os.path.join(tmp, "data.age")
            began = time.perf_counter()
            run("age", "-e", "-r", recipient, "-o", sealed, data)
            run("sync", sealed)
            run("age", "-d", "-i", key, "-o", out, sealed)
            run("sync", out)
            return time.perf_counter() - began

        def cp_round():
            copy = os.path.join(tmp, "copy.img")
            began = time.perf_counter()
            run("cp", data, copy)
            run("sync", copy)
            run("cp", copy, out)
            run("sync", out)
            return time.perf_counter() - began

        rounds = {"strongroom": [], "age": [], "cp": []}
        for _ in range(args.rounds):
            rounds["strongroom"].append(strongroom_round())
            rounds["age"].append(age_round())
            rounds["cp"].append(cp_round())
        # The last round's output is cp's: check strongroom's own too.
        sr_point = sr("backup", "data", data).stdout.strip()
        sr("restore", sr_point, "-o", out, "--force")
        if not filecmp.cmp(data, out, shallow=False):
            raise SystemExit("strongroom restored other bytes")

    median = {name: statistics.median(times) for name, times in rounds.items()}
    print(f"{args.mib} MiB, {args.rounds} interleaved rounds, median wall clock of a round trip:")
    for name, t in median.items():
        print(f"  {name:<10} {t:7.2f} s  ({args.mib / t * 2:7.0f} MiB/s through)  all: "
              + ", ".join(f"{x:.2f}" for x in rounds[name]))
    print(f"strongroom / age: {median['strongroom'] / median['age']:.2f}x the time")
    print(f"strongroom / cp:  {median['strongroom'] / median['cp']:.2f}x the time")


if __name__ == "__main__":
    main()
