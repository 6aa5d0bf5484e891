# alloc_heavy.py: an allocation-heavy Python program with a deterministic output, run
# with and without the preloaded allocator (tests/preload/run.sh compares the outputs).
# Exercises CPython's own malloc paths: many small objects (dicts, tuples, strings), big
# buffers (bytes, bytearray growth through realloc), list growth, garbage collection of
# cycles, and threads.
import hashlib
import random
import threading

rng = random.Random(20261122)
h = hashlib.sha256()

# Small objects: a dict of tuples and strings, rebuilt several times.
for rnd in range(6):
    d = {}
    for i in range(60000):
        k = "k%d-%d" % (i, rng.randrange(1000))
        d[k] = (i, str(i * 7), [i] * (i % 5))
    keys = sorted(d)[:: 997]
    h.update(repr([d[k] for k in keys]).encode())
    del d

# Large buffers: growing bytearrays (realloc) and big bytes objects.
buf = bytearray()
for i in range(20000):
    buf += bytes([i % 251]) * (1 + i % 300)
h.update(hashlib.sha256(buf).digest())
blobs = [bytes(rng.randrange(40000, 400000)) for _ in range(200)]
h.update(str(sum(len(b) for b in blobs)).encode())
del blobs

# Cycles for the garbage collector.
class Node:
    def __init__(self, v):
        self.v = v
        self.peer = None

nodes = [Node(i) for i in range(100000)]
for a, b in zip(nodes, nodes[1:]):
    a.peer = b
nodes[-1].peer = nodes[0]
h.update(str(sum(n.peer.v for n in nodes)).encode())
del nodes

# Threads allocating at once (results joined in order).
out = [None] * 8


def work(t):
    r = random.Random(t)
    acc = []
    for i in range(20000):
        acc.append(("x" * r.randrange(1, 200), i))
        if len(acc) > 500:
            acc = acc[250:]
    out[t] = sum(len(s) for s, _ in acc)


ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
h.update(repr(out).encode())

print(h.hexdigest())
