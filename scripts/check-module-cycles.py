#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

Usage: scripts/check-module-cycles.py [-q] [CRATE_DIR...]   (default: crates/* and examples/*)
Prints each cycle found (with -q only its modules, not its paths and references) and exits 1 if
there is one, else 0. Python 3 standard library only.

What it reads: every crate root (src/lib.rs, src/main.rs, src/bin/*.rs, src/bin/*/main.rs) and
the files its `mod x;` declarations reach. Comments and string literals are removed first.

Which references count: every `use` declaration and every path starting with `crate::`,
`super::` or `self::` in the code (types, calls, macros' arguments), in inline `mod x { ... }`
blocks too (`super` there is their file's module), except in `#[cfg(test)]` ones: a unit test
may use any module of its crate. In a crate root, a path starting with the name of one of its
modules (`server::Shared`) counts too. Files under `#[cfg(test)] mod x;` are still read.

What a node is (the granularity):
  * level 1: each top-level module of a crate (a folder module with all its submodules is one
    node), plus the crate root's own code (`crate`, the items lib.rs or main.rs defines);
  * level 2: inside each folder module (`store/mod.rs` and its files), each direct submodule.
    Its `mod.rs` is the folder's facade and not a node there: the submodules reaching items it
    defines or re-exports (`super::Name`) is not a cycle.
A name the root re-exports or imports (`pub use config::RateLimits;`, `use server::Shared;`)
counts as the module it comes from: `crate::RateLimits` is a reference to `config`. So do names a
folder's `mod.rs` re-exports, at level 2. A root's `pub use` is a facade, not a reference from
the root; its private `use` lines are references. A name nothing maps is the root's (level 1)
or the folder's own (level 2).

A cycle is a strongly connected component of that graph with more than one node: it is printed
with one closed path through each edge of it, and the references (file:line) behind each edge.
"""

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strip(src):
    """The source with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
            continue
        m = re.match(r'b?r(#*)"', src[i:i + 260]) if c in "br" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")) else None
        if m:
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", src[i:j + 1]))
            i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def use_paths(tree):
    """The full paths (lists of segments) a use tree names; `*` and `{}` expanded."""
    tree = re.sub(r"\s+", "", tree)

    def parse(s, prefix):
        paths = []
        depth, start = 0, 0
        parts = []
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            if "{" in part:
                head, rest = part.split("{", 1)
                head_segs = [x for x in head.split("::") if x]
                paths += parse(rest[: rest.rfind("}")], prefix + head_segs)
            else:
                name = re.sub(r"as\w+$", "", part) if re.search(r"\bas\w", part) else part
                segs = [x for x in name.split("::") if x]
                segs = [x for x in segs if x != "self"] if segs and segs[-1] == "self" else segs
                paths.append(prefix + segs)
        return paths

    return parse(tree, [])


class Crate:
    """One module tree: a crate root and the files its `mod` declarations reach."""

    def __init__(self, root_file):
        self.root_file = root_file
        self.files = {}  # module path (tuple) -> file
        self.children = defaultdict(set)  # module path -> child module names
        self.folder = set()  # module paths that are folders (mod.rs or x/ next to x.rs)
        self.walk(root_file, ())

    def walk(self, file, path):
        self.files[path] = file
        text = strip(open(file, encoding="utf-8").read())
        base = os.path.dirname(file)
        name = os.path.basename(file)
        if path and name not in ("mod.rs", "main.rs", "lib.rs"):
            base = os.path.join(base, name[:-3])
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            child = m.group(1)
            for cand in (os.path.join(base, child + ".rs"), os.path.join(base, child, "mod.rs")):
                if os.path.exists(cand):
                    self.children[path].add(child)
                    if path:
                        self.folder.add(path)
                    self.walk(cand, path + (child,))
                    break


def inline_mods(text):
    """(start, end, name, is_test) of each inline `mod name { ... }` block."""
    spans = []
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        attrs = re.search(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?$", text[: m.start()])
        is_test = bool(attrs and re.search(r"#\[cfg\(test\)\]", attrs.group(1)))
        spans.append((m.start(), j, m.group(1), is_test))
    return spans


def analyse(crate):
    """Level-1 and level-2 edges: {(a, b): [file:line, ...]}."""
    reexports = defaultdict(dict)  # module path -> {name: child module name}
    root_uses = []  # (line, target module) of the root's private `use`s
    texts = {p: strip(open(f, encoding="utf-8").read()) for p, f in crate.files.items()}
    for path, text in texts.items():
        kids = crate.children.get(path, set())
        for m in re.finditer(r"(?:\b(pub)(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", text):
            for segs in use_paths(m.group(2)):
                segs = segs[1:] if segs and segs[0] == "self" else segs
                if len(segs) >= 2 and segs[0] in kids and segs[-1] != "*":
                    reexports[path][segs[-1]] = segs[0]

    def resolve(segs):
        """The module path (at most two levels) an absolute path reaches."""
        if not segs:
            return ()
        top = segs[0]
        if top not in crate.children[()]:
            top = reexports[()].get(top)
            if top is None:
                return ()
            segs = [top] + segs  # the name came from `top`; look at it there
        if (top,) in crate.folder and len(segs) > 1:
            second = segs[1]
            if second in crate.children[(top,)]:
                return (top, second)
            via = reexports[(top,)].get(second)
            if via:
                return (top, via)
        return (top,)

    edges = defaultdict(list)
    for path, text in texts.items():
        file = os.path.relpath(crate.files[path], ROOT)
        spans = inline_mods(text)
        refs = []  # (offset, absolute segments)

        def here(off):
            inner = [name for (s, e, name, _) in spans if s < off < e]
            return list(path) + inner

        def in_test(off):
            return any(t and s < off < e for (s, e, _, t) in spans)

        for m in re.finditer(r"(?:\b(pub)(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", text):
            is_root_pub = m.group(1) and not path
            for segs in use_paths(m.group(2)):
                if is_root_pub:
                    continue  # the root's re-exports are its facade
                refs.append((m.start(), segs))
        for m in re.finditer(r"(?<![\w:])(crate|super|self)((?:\s*::\s*\w+)+)", text):
            segs = [m.group(1)] + [x for x in re.split(r"\s*::\s*", m.group(2)) if x]
            refs.append((m.start(), segs))
        if not path:
            kids = "|".join(sorted(crate.children[()]))
            if kids:
                for m in re.finditer(r"(?<![\w:])(%s)\s*::\s*\w+" % kids, text):
                    refs.append((m.start(), [m.group(1), "_"]))
        seen = set()
        for off, segs in refs:
            if in_test(off):
                continue
            cur = here(off)
            if segs[0] == "crate":
                absolute = segs[1:]
            elif segs[0] in ("super", "self"):
                base = list(cur)
                k = 0
                while k < len(segs) and segs[k] in ("super", "self"):
                    if segs[k] == "super":
                        base = base[:-1]
                    k += 1
                absolute = base + segs[k:]
            elif not path and segs[0] in crate.children[()]:
                absolute = segs
            else:
                continue  # another crate, std, or a name in scope
            # The file's own nodes.
            src1 = path[:1]
            target = resolve(absolute)
            line = text.count("\n", 0, off) + 1
            where = f"{file}:{line}"
            t1 = target[:1]
            if src1 != t1 and (src1, t1) not in seen:
                seen.add((src1, t1))
                edges[(src1, t1)].append(where)
            # Level 2: between the submodules of one folder module (its mod.rs is no node).
            if len(path) >= 2 and len(target) == 2 and target[0] == path[0] and target[1] != path[1]:
                key = (path[:2], target)
                if key not in seen:
                    seen.add(key)
                    edges[key].append(where)
    return edges


def sccs(nodes, adj):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def name(node):
    return "crate" if not node else "::".join(node)


QUIET = False


def check(crate_dir):
    src = os.path.join(crate_dir, "src")
    roots = [os.path.join(src, f) for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))]
    bins = os.path.join(src, "bin")
    if os.path.isdir(bins):
        for entry in sorted(os.listdir(bins)):
            p = os.path.join(bins, entry)
            if entry.endswith(".rs"):
                roots.append(p)
            elif os.path.exists(os.path.join(p, "main.rs")):
                roots.append(os.path.join(p, "main.rs"))
    found = 0
    for root in roots:
        crate = Crate(root)
        edges = analyse(crate)
        for level in (1, 2):
            adj = defaultdict(set)
            nodes = set()
            for (a, b), _ in edges.items():
                if (level == 1 and len(a) <= 1 and len(b) <= 1) or (level == 2 and len(a) == 2 and len(b) == 2):
                    adj[a].add(b)
                    nodes |= {a, b}
            for comp in sccs(nodes, adj):
                if len(comp) < 2:
                    continue
                found += 1
                members = set(comp)
                rel = os.path.relpath(root, ROOT)
                print(f"CYCLE in {rel} ({len(comp)} modules): {', '.join(sorted(name(c) for c in comp))}")
                if QUIET:
                    continue
                covered = set()
                for a in sorted(comp):
                    for b in sorted(adj[a] & members):
                        if (a, b) in covered:
                            continue
                        # A closed path through the edge a -> b, until every edge is on one.
                        loop = [a] + shortest_path(b, a, adj, members)
                        covered |= set(zip(loop, loop[1:]))
                        print("  " + " -> ".join(name(x) for x in loop))
                for a in sorted(comp):
                    for b in sorted(adj[a] & members):
                        print(f"    {name(a)} -> {name(b)}: {', '.join(edges[(a, b)][:3])}")
    return found


def shortest_path(a, b, adj, members):
    """Nodes of a shortest path a -> ... -> b inside `members` (a included)."""
    prev, frontier = {a: None}, [a]
    while frontier:
        nxt = []
        for v in frontier:
            if v == b:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path))
            for w in sorted(adj.get(v, ())):
                if w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return [a, b]


def main():
    global QUIET
    args = sys.argv[1:]
    if args[:1] == ["-q"]:
        QUIET, args = True, args[1:]
    dirs = args or sorted(
        os.path.join(ROOT, d, c)
        for d in ("crates", "examples")
        if os.path.isdir(os.path.join(ROOT, d))
        for c in os.listdir(os.path.join(ROOT, d))
        if os.path.exists(os.path.join(ROOT, d, c, "Cargo.toml"))
    )
    cycles = sum(check(d) for d in dirs)
    if cycles:
        print(f"check-module-cycles: {cycles} cycle(s)")
        return 1
    print(f"check-module-cycles: no cycle in {len(dirs)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
