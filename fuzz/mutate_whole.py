#!/usr/bin/env python3
"""Whole-file damage: copies of a large capture with random edits, through the release binary.

    fuzz/mutate_whole.py [--count 3] [--seed 99] [--ports 443] [--bin PATH] [--rss-mb 300] CAPTURE

Each case is a copy of CAPTURE (in $TMPDIR) with 10, 100 or 1000 random edits (a byte, or a 32-bit
field set to 0 or 0xffffffff) and, in 30 % of the cases, cut at a random point past its middle. It
is analyzed with --threads 1 and 2 (JSON report) under /usr/bin/time; checked: exit status 0, 1 or
2, no panic, peak RSS under --rss-mb, both reports byte for byte the same. Prints time and peak memory of each run; exit
status 1 when any check failed. Complements mutate.py (small slices) with the caps on big inputs.
"""
import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--ports", default="443")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/tlsdiag"))
    ap.add_argument("--rss-mb", type=float, default=300)
    ap.add_argument("capture")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    size = os.path.getsize(a.capture)
    if size < 1000:
        ap.error("the capture is too small for this test; use mutate.py")
    work = tempfile.mkdtemp(prefix="tlsdiag-whole-")
    case = os.path.join(work, "case.pcap")
    failed = 0
    try:
        for i in range(a.count):
            shutil.copyfile(a.capture, case)
            edits = rng.choice([10, 100, 1000])
            with open(case, "r+b") as f:
                for _ in range(edits):
                    f.seek(rng.randrange(24, size - 4))
                    f.write(rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", bytes([rng.randrange(256)])]))
                if rng.random() < 0.3:
                    f.truncate(rng.randrange(size // 2, size))
            reports = []
            for threads in (1, 2):
                out = os.path.join(work, f"out-{threads}.json")
                timing = os.path.join(work, "time")
                args = ["/usr/bin/time", "-f", "%e %M", "-o", timing, a.bin, "analyze", "-f", "json", "-o", out,
                        "--port", a.ports, "--threads", str(threads), case]
                try:
                    r = subprocess.run(args, capture_output=True, timeout=1200)
                except subprocess.TimeoutExpired:
                    print(f"case {i} threads {threads}: HANG (over 1200 s)")
                    failed += 1
                    continue
                secs, kb = open(timing).read().split()[-2:]
                peak = int(kb) / 1024
                err = r.stderr.decode(errors="replace")
                problems = []
                if r.returncode not in (0, 1, 2) or "panicked" in err:
                    problems.append(f"exit {r.returncode}: {err[:200]}")
                if peak > a.rss_mb:
                    problems.append(f"peak RSS {peak:.0f} MB")
                digest = hashlib.sha256()
                if r.returncode != 2 and os.path.exists(out):
                    with open(out, "rb") as f:
                        for block in iter(lambda: f.read(1 << 20), b""):
                            digest.update(block)
                reports.append(digest.hexdigest())
                print(f"case {i} ({edits} edits) threads {threads}: exit {r.returncode}, {secs} s, peak RSS {peak:.0f} MB"
                      + (f"  FAILED: {'; '.join(problems)}" if problems else ""), flush=True)
                failed += bool(problems)
            if len(set(reports)) > 1:
                print(f"case {i}: FAILED: reports of 1 and 2 threads differ")
                failed += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.count} damaged copies of {os.path.basename(a.capture)}, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
