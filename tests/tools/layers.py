#!/usr/bin/env python3
"""Which source folders call which, read off the built objects with nm.

Prints one line per folder ("FOLDER -> A B C") and, last, the pairs of
folders that call each other ("cycle A B"), if any; exits 1 when there is
one. A call is an undefined symbol of one folder's objects that another
folder's objects define as a function (T). Data (the backend table's ops
structs) does not count: the launcher reaches its backends through it.
Usage: layers.py OBJDIR (build/obj)."""
import collections
import os
import subprocess
import sys

objdir = sys.argv[1] if len(sys.argv) > 1 else "build/obj"
defs, undefs = {}, collections.defaultdict(set)
for root, _, files in os.walk(objdir):
    folder = os.path.relpath(root, objdir)
    if folder.startswith(("tests", "guest")):
        continue
    for f in files:
        if not f.endswith(".o"):
            continue
        out = subprocess.run(["nm", os.path.join(root, f)], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] == "T":
                defs[p[2]] = folder
            elif len(p) == 2 and p[0] == "U":
                undefs[folder].add(p[1])
edges = collections.defaultdict(set)
for folder, syms in undefs.items():
    for s in syms:
        if s in defs and defs[s] != folder:
            edges[folder].add(defs[s])
for folder in sorted(edges):
    print(folder, "->", " ".join(sorted(edges[folder])))
cycles = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
for a, b in cycles:
    print("cycle", a, b)
sys.exit(1 if cycles else 0)
