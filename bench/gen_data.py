#!/usr/bin/env python3
# Generates the deterministic benchmark data set: ~60 % text-like files (JSON and logs, 1 KiB-1 MiB), ~30 %
# incompressible binaries (1-64 MiB) and ~10 % tiny files (100 B-4 KiB), by bytes. Standard library only; the same
# --size-mib and --seed always give the same bytes.
"""Usage: gen_data.py OUT_DIR [--size-mib 1024] [--seed 1]"""

import argparse
import json
import os
import random
import sys

KIB = 1024
MIB = 1024 * KIB

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
    "romeo sierra tango uniform victor whiskey xray yankee zulu order invoice customer shipment pending paid "
    "refunded cancelled warehouse berlin paris tokyo lisbon oslo lagos lima quito premium basic trial"
).split()
SERVICES = ["api", "worker", "db", "cache", "scheduler", "gateway", "auth", "mailer"]
LEVELS = ["INFO"] * 6 + ["DEBUG"] * 3 + ["WARN", "ERROR"]
PATHS = ["/v1/orders", "/v1/orders/{}", "/v1/customers/{}", "/v1/items", "/healthz", "/v1/search", "/login"]
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "python-requests/2.31", "Go-http-client/1.1"]


def log_text(rng, size):
    """Log lines with an advancing clock, request ids and latencies: compresses about 4-6x with gzip -6."""
    out, total = [], 0
    t = rng.randrange(86400 * 1000)
    while total < size:
        t += rng.randrange(1, 2000)
        path = rng.choice(PATHS).format(rng.randrange(100000))
        line = (
            f"2026-11-{1 + (t // 86400000) % 28:02d}T{(t // 3600000) % 24:02d}:{(t // 60000) % 60:02d}:"
            f"{(t // 1000) % 60:02d}.{t % 1000:03d}Z {rng.choice(LEVELS)} [{rng.choice(SERVICES)}] "
            f"request_id={rng.getrandbits(48):012x} method={'GET' if rng.random() < 0.8 else 'POST'} path={path} "
            f"status={rng.choice((200, 200, 200, 201, 204, 304, 404, 500))} duration_ms={rng.randrange(1, 900)} "
            f'agent="{rng.choice(AGENTS)}"\n'
        )
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def json_text(rng, size):
    """JSON lines of order records: compresses about 4-6x with gzip -6."""
    out, total, n = [], 0, rng.randrange(1000000)
    while total < size:
        n += 1
        record = {
            "id": n,
            "customer": f"{rng.choice(WORDS)}.{rng.choice(WORDS)}{rng.randrange(1000)}@example.com",
            "status": rng.choice(WORDS[26:34]),
            "city": rng.choice(WORDS[34:41]),
            "plan": rng.choice(WORDS[41:]),
            "total_cents": rng.randrange(100, 500000),
            "items": [{"sku": f"SKU-{rng.randrange(10000):05d}", "qty": rng.randrange(1, 9)}
                      for _ in range(rng.randrange(1, 4))],
            "note": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 8))),
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def log_uniform(rng, low, high):
    """A size between low and high, as many small as large on a log scale."""
    return int(low * (high / low) ** rng.random())


def generate(out_dir, size_mib, seed):
    budget = size_mib * MIB
    shares = {"text": budget * 60 // 100, "binary": budget * 30 // 100}
    shares["tiny"] = budget - shares["text"] - shares["binary"]
    counts = {}

    rng = random.Random(f"{seed}-text")
    done, i = 0, 0
    while done < shares["text"]:
        size = min(log_uniform(rng, KIB, MIB), shares["text"] - done)
        file_rng = random.Random(f"{seed}-text-{i}")
        if i % 2:
            data, name = json_text(file_rng, size), f"text/d{i % 50:02d}/orders-{i:06d}.jsonl"
        else:
            data, name = log_text(file_rng, size), f"text/d{i % 50:02d}/service-{i:06d}.log"
        write(os.path.join(out_dir, name), data)
        done, i = done + size, i + 1
    counts["text"] = i

    rng = random.Random(f"{seed}-binary")
    done, i = 0, 0
    while done < shares["binary"]:
        size = min(rng.randrange(MIB, 64 * MIB + 1), shares["binary"] - done)
        data = random.Random(f"{seed}-binary-{i}").randbytes(size)
        write(os.path.join(out_dir, f"binary/blob-{i:04d}.bin"), data)
        done, i = done + size, i + 1
    counts["binary"] = i

    rng = random.Random(f"{seed}-tiny")
    done, i = 0, 0
    while done < shares["tiny"]:
        size = min(rng.randrange(100, 4 * KIB + 1), shares["tiny"] - done)
        kind = i % 3
        if kind == 0:
            data = random.Random(f"{seed}-tiny-{i}").randbytes(size)
        elif kind == 1:
            data = json_text(random.Random(f"{seed}-tiny-{i}"), size)
        else:
            data = log_text(random.Random(f"{seed}-tiny-{i}"), size)
        write(os.path.join(out_dir, f"tiny/d{i % 256:03d}/f{i:06d}"), data)
        done, i = done + size, i + 1
    counts["tiny"] = i
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if os.path.exists(args.out_dir) and os.listdir(args.out_dir):
        sys.exit(f"{args.out_dir} is not empty")
    counts = generate(args.out_dir, args.size_mib, args.seed)
    print(f"{args.out_dir}: {args.size_mib} MiB, seed {args.seed}: "
          f"{counts['text']} text, {counts['binary']} binary, {counts['tiny']} tiny files")


if __name__ == "__main__":
    main()
