"""The python3 workload of the whole-program benchmarks: allocation-heavy pure Python.

    python3 pywork.py [ROUNDS [ENTRIES]]     (4 rounds of 60,000 entries by default)

Builds and drops dictionaries of short strings, lists of tuples, a sorted index and a
JSON round trip, the way scripting workloads churn small objects. CPython's small
objects come from its own arenas (pymalloc, 256 KiB each from the C library's malloc
family), everything larger from malloc itself, so both paths of the preloaded allocator
are exercised. Prints a checksum, so that a broken allocator shows as another line.
"""
import json
import sys


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    entries = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
    total = 0
    for rnd in range(rounds):
        words = {}
        for i in range(entries):
            key = "k%d-%d" % (i * 7919 % 100003, rnd)
            words[key] = [key.upper(), i, (i, rnd)]
        rows = sorted(words.items(), key=lambda kv: kv[1][1] % 977)
        text = json.dumps([r[1][0] for r in rows[:entries // 3]])
        back = json.loads(text)
        blobs = [bytes(64 + i % 4000) for i in range(3000)]
        total += len(back) + sum(len(b) for b in blobs) % 1000 + len(words)
        del words, rows, text, back, blobs
    print("pywork: checksum", total)


if __name__ == "__main__":
    main()
