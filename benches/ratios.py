#!/usr/bin/env python3
"""Summarise the `aead` criterion bench: throughput (GB/s) per implementation and
strongroom-vs-peer ratios, per group (seal/open) and message size.

Reads target/criterion/<group>/<impl>/<size>/new/{benchmark,estimates}.json as
written by `cargo bench -p strongroom-benches --bench aead`. Python 3 stdlib only.

Usage:
    python3 benches/ratios.py [--stat median|mean] [--criterion-dir DIR] [--format md|text]

GB/s is 10^9 bytes per second (bytes / ns). A ratio is
throughput(strongroom) / throughput(peer): > 1.00 means strongroom is faster.
"""

import argparse
import json
import os
import sys
from pathlib import Path

GROUPS = ["seal", "open"]
IMPLS = ["strongroom", "strongroom-oop", "strongroom-avx512", "strongroom-avx2",
         "strongroom-avx2-oop", "strongroom-aesni", "strongroom-portable",
         "aes-gcm", "ring", "aws-lc-rs"]
# (ours, peer) ratio columns: the default tier against every peer, and each
# forced tier against ring and aws-lc-rs (issue 4: the AVX2 tier >= 1.0x
# ring). Columns with no results in this run (a tier this CPU lacks, or the
# default tier itself, which is benched only as `strongroom`) are left out.
RATIOS = [("strongroom", "aes-gcm"), ("strongroom", "ring"), ("strongroom", "aws-lc-rs"),
          ("strongroom-avx2", "ring"), ("strongroom-avx2", "aws-lc-rs"),
          ("strongroom-aesni", "ring"), ("strongroom-aesni", "aws-lc-rs"),
          ("strongroom-oop", "aws-lc-rs"), ("strongroom-avx2-oop", "ring")]


def default_criterion_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "criterion"
    return Path(__file__).resolve().parent.parent / "target" / "criterion"


def human_size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def load(criterion_dir: Path, stat: str):
    """Return {(group, impl, size_bytes): (ns_per_iter, bytes_per_iter)}."""
    results = {}
    for group in GROUPS:
        gdir = criterion_dir / group
        if not gdir.is_dir():
            continue
        for bench_json in gdir.glob("*/*/new/benchmark.json"):
            est_json = bench_json.with_name("estimates.json")
            if not est_json.is_file():
                continue
            with open(bench_json) as f:
                meta = json.load(f)
            with open(est_json) as f:
                est = json.load(f)
            impl = meta.get("function_id")
            if meta.get("group_id") != group or impl not in IMPLS:
                continue
            try:
                size = int(meta.get("value_str"))
            except (TypeError, ValueError):
                continue
            throughput = meta.get("throughput") or {}
            nbytes = throughput.get("Bytes", throughput.get("BytesDecimal", size))
            ns = est[stat]["point_estimate"]
            results[(group, impl, size)] = (ns, nbytes)
    return results


def fmt_gbps(v):
    return "-" if v is None else f"{v:.3f}"


def fmt_ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stat", choices=["median", "mean"], default="median",
                    help="criterion point estimate to use (default: median)")
    ap.add_argument("--criterion-dir", type=Path, default=None,
                    help="criterion output dir (default: $CARGO_TARGET_DIR/criterion or <workspace>/target/criterion)")
    ap.add_argument("--format", choices=["md", "text"], default="md",
                    help="markdown table (default) or aligned plain text")
    args = ap.parse_args()

    cdir = args.criterion_dir or default_criterion_dir()
    results = load(cdir, args.stat)
    if not results:
        print(f"no aead results under {cdir}; run `cargo bench -p strongroom-benches --bench aead` first",
              file=sys.stderr)
        return 1

    present = {i for (_, i, _) in results}
    impls = [i for i in IMPLS if i in present]
    ratios = [(o, p) for o, p in RATIOS if o in present and p in present]
    header = (["group", "size"] + [f"{i} GB/s" for i in impls]
              + [f"{o}/{p}" for o, p in ratios])
    rows = []
    for group in GROUPS:
        sizes = sorted({s for (g, _, s) in results if g == group})
        for size in sizes:
            gbps = {}
            for impl in impls:
                r = results.get((group, impl, size))
                gbps[impl] = None if r is None else r[1] / r[0]  # bytes/ns == GB/s
            rows.append([group, human_size(size)] + [fmt_gbps(gbps[i]) for i in impls]
                        + [fmt_ratio(gbps[o], gbps[p]) for o, p in ratios])

    print(f"AES-256-GCM throughput, criterion {args.stat} point estimate "
          f"(GB/s = 1e9 B/s; ratio > 1.00x = strongroom faster); source: {cdir}")
    print()
    if args.format == "md":
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
        for r in [header] + rows:
            print("  ".join(str(c).rjust(w) if i >= 2 else str(c).ljust(w)
                            for i, (c, w) in enumerate(zip(r, widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
