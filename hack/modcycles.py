#!/usr/bin/env python3
"""Import cycles between the modules of a Rust library crate.

    hack/modcycles.py [--graph] [--top] CRATE_SRC_DIR...    (e.g. builder/src)

Builds the module tree from `mod` declarations starting at lib.rs (test-only modules, i.e.
`#[cfg(test)] mod x;` and `#[cfg(test)] mod x { ... }`, are left out), then an edge from a
module's file to the file that *defines* each item it names: every `use` path and every
path in code that starts with `crate::`, `super::`, `self::`, a child module or a name a
`use` brought in. Re-exports (`pub use`) are followed to the item's definition, so a
`mod.rs` that re-exports its children does not by itself make a circle with them (a
`pub use` is no edge of the module that writes it: its users get the edge to the
definition); a module that uses an item of another module does.

Prints every strongly connected component of more than one file (a circle), and with
--top also the circles between the crate's top-level modules taken as whole subtrees
(e.g. everything under oci/ against store.rs). --graph prints the edges too. Exit status
1 when there is a circle, 0 when there is none. It is a text scan, not a compiler: macros
that build paths, and items named only through method calls on values, are not seen
(method calls name no module, so they cannot add an import edge anyway).
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ITEM_RE = re.compile(
    r"\b(?:fn|struct|enum|trait|type|const|static|union|mod)\s+(" + IDENT + r")\b"
    r"|\bmacro_rules!\s*(" + IDENT + r")"
)


def strip_code(text):
    """Text without comments, string and char literals (so paths in them are not seen)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        m = re.match(r'b?r(#*)"', text[i:i + 260]) if c in "br" else None
        if m and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            i = n if j < 0 else j + len(end)
            out.append('""')
            continue
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
            continue
        if c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            if m:
                i += m.end()
                out.append("' '")
                continue
        out.append(c)
        i += 1
    return "".join(out)


def block_end(code, start):
    """Index just past the `}` matching the first `{` at or after start."""
    depth, i = 0, code.index("{", start)
    while i < len(code):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(code)


def drop_test_code(code):
    """Removes `#[cfg(test)]` items: inline test modules and test-only functions/uses."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*", code)
        if not m:
            return code
        rest = code[m.end():]
        item = re.match(r"(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?(mod|fn|use|impl|struct|enum|const|static)\b", rest)
        if item and item.group(1) in ("mod", "fn", "impl", "struct", "enum"):
            semi = rest.find(";")
            brace = rest.find("{")
            if brace >= 0 and (semi < 0 or brace < semi):
                end = block_end(code, m.end())
            else:
                end = m.end() + semi + 1
        else:
            semi = rest.find(";")
            end = m.end() + (semi + 1 if semi >= 0 else len(rest))
        code = code[:m.start()] + code[end:]


def split_top(s, sep=","):
    """Splits s at sep outside braces."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def expand_use(tree, prefix=()):
    """`a::{b, c::{d as e}, *}` -> [(segments, alias)]; alias None for a glob."""
    tree = re.sub(r"\s+", " ", tree).strip()
    if tree.startswith("::"):
        tree = tree[2:]
    brace = tree.find("{")
    if brace >= 0 and tree.endswith("}"):
        head = [s for s in tree[:brace].split("::") if s.strip()]
        out = []
        for part in split_top(tree[brace + 1:-1]):
            out.extend(expand_use(part, prefix + tuple(s.strip() for s in head)))
        return out
    alias = None
    m = re.match(r"(.*?)\s+as\s+(" + IDENT + r")$", tree)
    if m:
        tree, alias = m.group(1), m.group(2)
    segs = prefix + tuple(s.strip() for s in tree.split("::") if s.strip())
    if segs and segs[-1] == "*":
        return [(segs[:-1], None)]
    if segs and segs[-1] == "self":
        segs = segs[:-1]
    if not segs:
        return []
    return [(segs, alias or segs[-1])]


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path (tuple) -> file
        self.code = {}  # module path -> stripped code
        self.children = {}  # module path -> set of child names
        self.load((), os.path.join(src, "lib.rs"), True)
        self.items = {}
        self.reexports = {}  # module -> {name: abs path} (every `use`, public or not)
        self.globs = {}  # module -> [abs module path]
        self.uses = {}  # module -> [(abs path, alias, is_pub)]
        for mod, code in self.code.items():
            self.items[mod] = {a or b for a, b in ITEM_RE.findall(code)}
            self.reexports[mod], self.globs[mod], self.uses[mod] = {}, [], []
            for m in re.finditer(r"(\bpub(?:\s*\([^)]*\))?\s+)?\buse\s+([^;]+);", code):
                for segs, alias in expand_use(m.group(2)):
                    path = self.absolute(mod, segs, {})
                    if path is None:
                        continue
                    self.uses[mod].append((path, alias, bool(m.group(1))))
                    # Any import is a name in the module that paths into it can use
                    # (children see their ancestors' private imports).
                    if alias is None:
                        self.globs[mod].append(path)
                    else:
                        self.reexports[mod][alias] = path

    def load(self, mod, path, dir_owner):
        with open(path, encoding="utf-8") as f:
            code = drop_test_code(strip_code(f.read()))
        self.files[mod], self.code[mod], self.children[mod] = path, code, set()
        base = os.path.dirname(path) if dir_owner else os.path.splitext(path)[0]
        for m in re.finditer(r"(?:pub(?:\s*\([^)]*\))?\s+)?\bmod\s+(" + IDENT + r")\s*;", code):
            name = m.group(1)
            flat, nested = os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")
            if os.path.exists(flat):
                self.children[mod].add(name)
                self.load(mod + (name,), flat, False)
            elif os.path.exists(nested):
                self.children[mod].add(name)
                self.load(mod + (name,), nested, True)

    def absolute(self, mod, segs, aliases):
        """The crate-absolute path of segs as written in module mod, or None if external."""
        first, rest = segs[0], tuple(segs[1:])
        if first == "crate":
            return rest
        if first == "self":
            return mod + rest
        if first == "super":
            up = mod
            while segs and segs[0] == "super":
                up, segs = up[:-1], segs[1:]
            return up + tuple(segs)
        if first in self.children.get(mod, ()):
            return mod + tuple(segs)
        if first in aliases:
            return aliases[first] + rest
        return None

    def definer(self, path, seen=None):
        """The module that defines the item at path (following re-exports), or None."""
        seen = seen or set()
        if path in seen:
            return None
        seen.add(path)
        k = len(path)
        while k > 0 and path[:k] not in self.files:
            k -= 1
        mod = path[:k]
        if k == len(path):
            return mod  # a module itself
        name = path[k]
        if name in self.items.get(mod, ()):
            return mod
        if name in self.reexports.get(mod, {}):
            return self.definer(self.reexports[mod][name] + path[k + 1:], seen)
        for g in self.globs.get(mod, ()):
            if self.names(g, name):
                return self.definer(g + path[k:], seen)
        return mod

    def names(self, mod, name, depth=0):
        """Whether module mod defines or imports name (through globs too)."""
        if mod not in self.files or depth > 20:
            return False
        if name in self.items[mod] or name in self.reexports[mod]:
            return True
        return any(self.names(g, name, depth + 1) for g in self.globs[mod])

    def edges(self):
        out = {m: set() for m in self.files}
        path_re = re.compile(r"(?<![A-Za-z0-9_:])(" + IDENT + r")((?:\s*::\s*" + IDENT + r")+)")
        for mod, code in self.code.items():
            aliases = {}
            for path, alias, public in self.uses[mod]:
                if alias is not None:
                    aliases[alias] = path
                    if public:
                        continue  # a re-export: its users get an edge to the definer
                    d = self.definer(path)
                    if d is not None and d != path:
                        out[mod].add(d)  # an item (a bare module import adds its uses below)
                elif not public:
                    out[mod].add(self.definer(path) or path)  # a glob import
            body = re.sub(r"\buse\s+[^;]+;", ";", code)
            for m in path_re.finditer(body):
                segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::") if s.strip()]
                path = self.absolute(mod, segs, aliases)
                if path is None:
                    continue
                d = self.definer(path)
                if d is not None:
                    out[mod].add(d)
        for m in out:
            out[m].discard(m)
            out[m] = {d for d in out[m] if d in self.files}
        return out


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, res, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
            res.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [c for c in res if len(c) > 1]


def name(mod):
    return "::".join(("crate",) + tuple(mod))


def report(src, what, graph):
    """Prints the circles of graph and the edges inside each; returns them."""
    comps = sccs(graph)
    for comp in comps:
        print(f"{src}: circle between {what}: " + ", ".join(name(m) for m in comp))
        for m in comp:
            for d in sorted(graph[m]):
                if d in comp:
                    print(f"    {name(m)} -> {name(d)}")
    return comps


def main():
    args = sys.argv[1:]
    show_graph, top = "--graph" in args, "--top" in args
    dirs = [a for a in args if not a.startswith("--")]
    if not dirs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    bad = 0
    for src in dirs:
        crate = Crate(src)
        graph = crate.edges()
        if show_graph:
            for m in sorted(graph):
                for d in sorted(graph[m]):
                    print(f"{name(m)} -> {name(d)}")
        comps = report(src, "modules", graph)
        top_comps = []
        if top:
            tg = {}
            for m, ds in graph.items():
                a = m[:1]
                tg.setdefault(a, set())
                for d in ds:
                    if d[:1] != a:
                        tg[a].add(d[:1])
            for d in list(tg.values()):
                for x in d:
                    tg.setdefault(x, set())
            top_comps = report(src, "top-level modules", tg)
        bad = bad or bool(comps or top_comps)
        if not comps and not top_comps:
            print(f"{src}: {len(graph)} modules, no circle" + (" (files or top-level subtrees)" if top else ""))
        elif not comps:
            print(f"{src}: {len(graph)} modules, no circle between files")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
