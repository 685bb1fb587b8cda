#!/usr/bin/env python3
"""Mutation stress: thousands of damaged versions of real captures through the real binary.

    fuzz/mutate.py [--count N] [--seed S] [--bin PATH] [--rss-mb MB] [--keep DIR] [--ports P,...]
                   [--no-samples] [CAPTURE...]

Every case is a capture from samples/cases/ or a slice of a CAPTURE file given (classic pcap: its
header plus about 600 KB of whole records from a random place; other files: their first 1.2 MB;
--no-samples: only these), damaged by 1 to 50 random edits: a pcap record header's time or length
set wrong, bit flips, bytes set to 0/0x7f/0x80/0xff, 32-bit length fields overwritten with 0,
1<<16, 0xffff0000 or 0xffffffff, deletions, duplicated stretches and truncation. Each case is
analyzed as a file with --threads 1 and 2, and a quarter of them again through standard input
with --threads 2. Checked for every run:

  - the exit status is 0, 1 or 2 and no panic message is printed;
  - an exit status 2 comes with exactly one line on stderr;
  - no run takes more than 20 s (a hang) or has a peak RSS above --rss-mb (default 300);
  - the reports of 1 and 2 threads (and of standard input) are byte for byte the same;
  - the damage does not multiply sessions: at most 3 per edit (plus 10) more than the capture
    had before it was damaged.

Failing inputs are kept in --keep (default /tmp/tlsdiag-mutate) for a regression test. Exit status
1 when any case failed. The binary is target/release/tlsdiag unless --bin says otherwise.
"""
import argparse
import glob
import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTHS = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x01\x00\x00", b"\xff\xff\x00\x00"]


def record_headers(b):
    """Offsets and byte order of a classic pcap's record headers (empty for anything else)."""
    order = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
    o = order.get(bytes(b[:4]))
    offs, off = [], 24
    while o and off + 16 <= len(b) and len(offs) < 100_000:
        offs.append(off)
        off += 16 + struct.unpack_from(o + "I", b, off + 8)[0]
    return offs, o


def damage_record_header(rng, b):
    """A pcap record header field (time, fraction, captured or original length) set wrong."""
    offs, o = record_headers(b)
    if not offs:
        return
    at = rng.choice(offs) + 4 * rng.randrange(4)
    old = struct.unpack_from(o + "I", b, at)[0]
    new = rng.choice([0, 0xFFFFFFFF, old ^ (1 << rng.randrange(32)), old + rng.choice([2, 30, 1000, 10**6])])
    struct.pack_into(o + "I", b, at, new & 0xFFFFFFFF)


def mutate(rng, data):
    """The damaged bytes and the number of edits."""
    b = bytearray(data)
    edits = rng.choice([1, 1, 2, 3, 5, 10, 50])
    for _ in range(edits):
        if not b:
            break
        op, i = rng.random(), rng.randrange(len(b))
        if op < 0.08:
            damage_record_header(rng, b)
        elif op < 0.4:
            b[i] ^= 1 << rng.randrange(8)
        elif op < 0.55:
            b[i] = rng.choice([0, 0xFF, 0x7F, 0x80])
        elif op < 0.7:
            j = min(len(b), i + 4)
            b[i:j] = rng.choice(LENGTHS)[: j - i]
        elif op < 0.8:
            del b[i : i + rng.randrange(1, 200)]
        elif op < 0.9:
            j = rng.randrange(len(b))
            b[i:i] = b[j : min(len(b), j + rng.randrange(1, 3000))]
        else:
            del b[i:]
    return bytes(b), edits


def sessions(report):
    """How many sessions a JSON report holds (None if it is not one)."""
    try:
        return len(json.loads(report).get("sessions", []))
    except (ValueError, AttributeError):
        return None


def record_start(buf, order, ts0, at):
    """The first offset from `at` where three pcap record headers chain plausibly, or None."""
    for p in range(at, max(at, len(buf) - 16)):
        q, ok = p, True
        for _ in range(3):
            if q + 16 > len(buf):
                ok = False
                break
            ts, _, cap, orig = struct.unpack(order + "IIII", buf[q : q + 16])
            if not (abs(ts - ts0) < 30 * 86400 and 14 <= cap <= 262144 and cap <= orig <= 262144):
                ok = False
                break
            q += 16 + cap
        if ok:
            return p
    return None


def slices(rng, path, count=4, size=600_000):
    """Header plus stretches of whole records of a classic pcap, from random places in it."""
    with open(path, "rb") as f:
        head = f.read(24)
        first = f.read(16)
        total = os.fstat(f.fileno()).st_size
        if head[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            f.seek(0)
            return [f.read(size * 2)]  # pcapng or anything else: its beginning, whole
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        ts0 = struct.unpack(order + "I", first[:4])[0] if len(first) == 16 else 0
        out = []
        for _ in range(count):
            f.seek(24 + rng.randrange(0, max(1, total - 24 - size)))
            buf = f.read(size + 300_000)
            at = record_start(buf, order, ts0, 0)
            out.append(head + (buf[at : at + size] if at is not None else buf[:size]))
        f.seek(0)
        out.append(f.read(size * 2))
        return out


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/tlsdiag"))
    ap.add_argument("--rss-mb", type=float, default=300)
    ap.add_argument("--keep", default="/tmp/tlsdiag-mutate")
    ap.add_argument("--ports", default="443", help="passed to --port (default 443)")
    ap.add_argument("--no-samples", action="store_true", help="only slices of the CAPTURE files")
    ap.add_argument("captures", nargs="*")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    bases = []
    if not a.no_samples:
        bases = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "samples/cases/*/*.pcap*")))]
    for c in a.captures:
        bases += slices(rng, c, count=20 if a.no_samples else 4)
    if not bases:
        ap.error("no captures: give CAPTURE files with --no-samples")
    os.makedirs(a.keep, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tlsdiag-mutate-")
    case, bad, codes, t0 = os.path.join(work, "case.pcap"), [], {}, time.time()

    def run(n, data, threads, stdin=False):
        out = os.path.join(work, f"out-{threads}-{int(stdin)}.json")
        args = [a.bin, "analyze", "-f", "json", "-o", out, "--threads", str(threads), "--port", a.ports, "-" if stdin else case]
        try:
            r = subprocess.run(args, input=data if stdin else None, capture_output=True, timeout=20)
        except subprocess.TimeoutExpired:
            return ("hang", None)
        err = r.stderr.decode(errors="replace")
        codes[r.returncode] = codes.get(r.returncode, 0) + 1
        if r.returncode not in (0, 1, 2) or "panicked" in err:
            return (f"exit {r.returncode}: {err[:200]}", None)
        if r.returncode == 2 and len(err.strip().splitlines()) != 1:
            return (f"exit 2 with {len(err.strip().splitlines())} lines: {err[:200]}", None)
        if peak_rss_mb() > a.rss_mb:
            return (f"peak RSS {peak_rss_mb():.0f} MB", None)
        report = open(out, "rb").read() if r.returncode != 2 and os.path.exists(out) else b""
        if os.path.exists(out):
            os.remove(out)
        # A file read and standard input differ only in the input's name.
        return (None, (r.returncode, report.replace(case.encode(), b"-")))

    clean = {}
    for n in range(a.count):
        k = rng.randrange(len(bases))
        data, edits = mutate(rng, bases[k])
        if k not in clean:
            with open(case, "wb") as f:
                f.write(bases[k])
            problem, result = run(-1, bases[k], 1)
            clean[k] = (sessions(result[1]) if result else None) or 0
            if problem:
                print(f"note: the undamaged capture {k} itself fails: {problem}")
        with open(case, "wb") as f:
            f.write(data)
        results = [run(n, data, 1), run(n, data, 2)]
        if n % 4 == 0:
            results.append(run(n, data, 2, stdin=True))
        problems = [p for p, _ in results if p]
        reports = {r for p, r in results if not p}
        if not problems and len(reports) > 1:
            problems.append("reports differ between thread counts or file and standard input")
        # A few edits damage a few packets: they may end connections early or add a few, never
        # multiply them (one bad timestamp once split every later packet into its own session).
        got = sessions(results[0][1][1]) if not results[0][0] and results[0][1][0] != 2 else None
        if got is not None and got > clean[k] + 3 * edits + 10:
            problems.append(f"{got} sessions from a capture of {clean[k]} after {edits} edits")
        if problems:
            keep = os.path.join(a.keep, f"case-{a.seed}-{n}.pcap")
            with open(keep, "wb") as f:
                f.write(data)
            bad.append((n, keep, problems))
        if n % 500 == 0:
            print(f"{n} cases, {len(bad)} failed, {time.time() - t0:.0f} s", flush=True)
    print(f"exit statuses over all runs: {dict(sorted(codes.items()))}")
    print(f"peak RSS of any run: {peak_rss_mb():.1f} MB")
    print(f"{a.count} mutated captures, {len(bad)} failed, {time.time() - t0:.0f} s")
    for n, keep, problems in bad[:20]:
        print(f"  case {n} ({keep}): {'; '.join(problems)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
