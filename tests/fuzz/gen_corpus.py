#!/usr/bin/env python3
"""Write the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/seed-*.

A fuzz input is a stream of choices (tests/fuzz/fuzz.h), so any byte string is a
valid run. The seeds are deterministic (random.Random with a fixed seed per file):
  - uniform bytes of 64 to 1024 bytes (scripts/fuzz: -max_len=1024) decode to runs like the differential tests'
    (every operation, sizes and indices spread over their ranges);
  - low bytes (0..15) favour the first operation kinds, index 0, small sizes and
    orders, the low window of the XArray and address-0 arenas;
  - high bytes (240..255) favour the last kinds, large sizes, the top of the index
    space and of the address space;
  - long runs of one repeated byte, which keep one choice fixed.
Usage: tests/fuzz/gen_corpus.py [OUTPUT_DIR]   (default: tests/fuzz/corpus)
Existing seed-* files are replaced; other files of the corpus are left alone: they
are inputs that found new coverage in long runs, added with `scripts/fuzz --merge`
(named by libFuzzer after their SHA-1).
"""
import os
import random
import sys

TARGETS = ["xarray", "vmem", "pages", "malloc"]


def seeds(target):
    salt = sum(map(ord, target))
    for i, n in enumerate([64, 256, 512, 1024, 1024]):
        r = random.Random(salt * 1000 + i)
        yield f"uniform-{n}-{i}", bytes(r.randrange(256) for _ in range(n))
    for i, n in enumerate([256, 1024]):
        r = random.Random(salt * 1000 + 100 + i)
        yield f"low-{n}", bytes(r.randrange(16) for _ in range(n))
        yield f"high-{n}", bytes(240 + r.randrange(16) for _ in range(n))
    for b in (0x00, 0x01, 0x33, 0x7f, 0xff):
        yield f"repeat-{b:02x}", bytes([b]) * 512


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for t in TARGETS:
        d = os.path.join(out, t)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name.startswith("seed-"):
                os.remove(os.path.join(d, name))
        for name, data in seeds(t):
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
