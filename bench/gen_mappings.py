#!/usr/bin/env python3
"""Generates a large mapping set for benchmarking `coupler check`.

The real mappings of the standard set (mappings/business-central-sales.map, kept in canonical
form by `coupler fmt`) are the templates, so every table pair and field pair is one the checker
accepts against the real schema catalogs. Each generation copies every mapping and option mapping
under a new name (CUSTOMER -> CUSTOMER-G7, "PAYMENT TERMS" -> "PAYMENT TERMS G7") and varies it
with a seeded random generator:

  * `via` and `after` point at the same generation (so the dependency graph of every generation
    is the standard one, deferred lookups included) or at an earlier one (long chains across
    generations; never a later one, so no new cycle appears);
  * optional plain field lines are dropped (one of each arrow direction is always kept);
  * text lines that already cut with `truncate` also `trim` or change case;
  * `where` filters are added on sides that have none (`!= ''` on text, `!= null` otherwise),
    and `couple by` on a field pair the mapping moves unchanged when it has no coupling;
  * the schedule is varied, comments are kept and one is added per item.

Files hold `--per-file` mappings each and declare the systems the same way; only the first one
carries the `settings` block. Usage:

    bench/gen_mappings.py --count 2000 --out target/bench/generated/mappings [--seed 1]

It prints `MAPPINGS LINES FILES` on stdout.
"""

import argparse
import os
import random
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDARD = os.path.join(ROOT, "mappings", "business-central-sales.map")

NAME = r'(?:"[^"\n]+"|[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)'
HEADER = re.compile(r"^(mapping|options) (" + NAME + r"):(.*)$")
FIELD = re.compile(
    r"^(\s+)(\"[^\"\n]*\"|'(?:[^'\n]|'')*'|\S+)\s+(<->|->|<-)\s+(\S.*)$"
)
VIA = re.compile(r"\bvia (" + NAME + r")")


class Item:
    def __init__(self, kind, name, lines, comments):
        self.kind = kind  # "mapping" or "options"
        self.name = name  # as written, quotes included
        self.lines = lines  # the item's lines, header first
        self.comments = comments  # comment lines right above it


def read_standard(path):
    """Splits the canonical standard file into its header (systems, settings) and items."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    systems, settings, items = [], [], []
    pending = []  # comment lines right above the next item; a blank line ends them
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            pending.append(line)
        elif line.strip() == "":
            pending = []
        elif line.startswith("system "):
            systems.append(line)
            pending = []
        elif line.startswith("settings"):
            block = [line]
            while not lines[i].startswith("}"):
                i += 1
                block.append(lines[i])
            settings = block
            pending = []
        else:
            m = HEADER.match(line)
            if not m:
                sys.exit(f"gen_mappings: unexpected line {i + 1}: {line!r}")
            block = [line]
            if line.endswith("{"):
                while not lines[i].startswith("}"):
                    i += 1
                    block.append(lines[i])
            items.append(Item(m.group(1), m.group(2), block, pending))
            pending = []
        i += 1
    return systems, settings, items


def renamed(name, gen):
    if name.startswith('"'):
        return f'{name[:-1]} G{gen}"'
    return f"{name}-G{gen}"


def generation_of(rng, gen, target, present):
    """The generation a reference from generation `gen` to `target` points at: mostly the same,
    sometimes one of the five before; the previous one when `target` is not in this (last,
    partial) generation."""
    g = gen
    if gen > 0 and rng.random() < 0.3:
        g = rng.randrange(max(0, gen - 5), gen)
    if (target, g) not in present:
        g = gen - 1
    return g


def rename_refs(line, present, rng, gen):
    """Renames `via X` and `after X, Y` references to mappings of this set."""
    names = {n for n, _ in present}

    def via(m):
        target = m.group(1)
        if target not in names:
            return m.group(0)
        return "via " + renamed(target, generation_of(rng, gen, target, present))

    line = VIA.sub(via, line)
    stripped = line.strip()
    if stripped.startswith("after "):
        indent = line[: len(line) - len(line.lstrip())]
        targets = [t.strip() for t in stripped[len("after ") :].split(",")]
        line = indent + "after " + ", ".join(
            renamed(t, generation_of(rng, gen, t, present)) if t in names else t
            for t in targets
        )
    return line


def vary_fields(block, rng):
    """Drops some plain field lines and adds transforms to text lines; keeps one per arrow."""
    parsed = [(line, FIELD.match(line)) for line in block]
    plain = {}
    for idx, (line, m) in enumerate(parsed):
        if m and " via " not in line and not m.group(2).startswith("'") and "[" not in line:
            plain.setdefault(m.group(3), []).append(idx)
    drop = set()
    for arrow, idxs in plain.items():
        candidates = idxs[1:]
        drop.update(i for i in candidates if rng.random() < 0.2)
    out = []
    for idx, (line, m) in enumerate(parsed):
        if idx in drop:
            continue
        if m and "| truncate(" in line and rng.random() < 0.5:
            fn = rng.choice(["trim", "trim", "upper", "lower", "title"])
            line = line.replace("| truncate(", f"| {fn} | truncate(", 1)
        out.append(line)
    return realign(out)


def realign(block):
    """Re-pads the field lines of a block so the arrows line up, as `coupler fmt` does."""
    fields = [FIELD.match(line) for line in block]
    ms = [m for m in fields if m]
    if not ms:
        return block
    width = max(len(m.group(2)) for m in ms)
    arrow = max(len(m.group(3)) for m in ms)
    out = []
    for line, m in zip(block, fields):
        if m:
            line = f"{m.group(1)}{m.group(2).ljust(width)} {m.group(3).rjust(arrow)} {m.group(4)}"
        out.append(line)
    return out


def copy_item(item, present, rng, gen):
    lines = [rename_refs(line, present, rng, gen) for line in item.lines]
    m = HEADER.match(lines[0])
    lines[0] = f"{m.group(1)} {renamed(item.name, gen)}:{m.group(3)}"
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\s+schedule every ", line):
            idle = rng.choice(["", " idle 6h", " idle 12h", " idle 24h"])
            line = f"    schedule every {rng.choice([5, 10, 15, 30, 60])}m{idle}"
        if line.strip() == "fields {":
            end = i + 1
            while lines[end].strip() != "}":
                end += 1
            out.append(line)
            out.extend(vary_fields(lines[i + 1 : end], rng))
            i = end
            continue
        out.append(line)
        i += 1
    if item.kind == "mapping":
        out = add_filters(out, rng)
    comments = list(item.comments)
    comments.append(f"# Generation {gen}: a copy of {item.name} for the benchmark.")
    return comments + out


def add_filters(lines, rng):
    """Adds `where` filters on sides that have none, on fields the mapping already moves: text
    fields (those cut with `truncate`) must not be empty, others must not be null."""
    fields = [FIELD.match(line) for line in lines]
    plain = [
        m
        for m in fields
        if m and " via " not in m.group(4) and not m.group(2).startswith("'")
        and not m.group(4).startswith("'") and m.group(2) not in ("true", "false")
    ]
    if not plain:
        return lines
    # Clauses that come before `where` in canonical order.
    at = 1
    while at < len(lines) and re.match(r"^    (when|key|watermark|where) ", lines[at]):
        at += 1
    added = []
    for system, side in (("bc", 2), ("sales", 4)):
        if any(line.startswith(f"    where {system}:") for line in lines):
            continue
        if rng.random() < 0.4:
            continue
        m = rng.choice(plain)
        field = m.group(2) if side == 2 else re.match(NAME, m.group(4)).group(0)
        text = "| truncate(" in m.group(4)
        value = "''" if text else "null"
        added.append(f"    where {system}: {field} != {value}")
    lines = lines[:at] + added + lines[at:]
    # Match-based coupling on a pair the mapping moves unchanged, when it has none.
    if not any(line.startswith("    couple by ") for line in lines) and rng.random() < 0.6:
        same = [m for m in plain if re.fullmatch(NAME, m.group(4)) and m.group(3) != "<-"]
        if same:
            m = rng.choice(same)
            at += len(added)
            case = " ignoring case" if rng.random() < 0.3 else ""
            lines.insert(at, f"    couple by {m.group(2)} == {m.group(4)}{case}")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=2000, help="mappings to generate")
    p.add_argument("--out", required=True, help="folder for the generated *.map files")
    p.add_argument("--per-file", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--standard", default=STANDARD)
    args = p.parse_args()

    rng = random.Random(args.seed)
    systems, settings, items = read_standard(args.standard)
    names = {i.name for i in items}
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    for old in os.listdir(out_dir):
        if old.endswith(".map"):
            os.remove(os.path.join(out_dir, old))

    # Schema paths relative to the generated files.
    std_dir = os.path.dirname(os.path.abspath(args.standard))

    def system_line(line):
        m = re.match(r'^(system \S+\s*=\s*\S+\s+)"([^"]+)"$', line)
        if not m:
            return line
        schema = os.path.normpath(os.path.join(std_dir, m.group(2)))
        return f'{m.group(1)}"{os.path.relpath(schema, out_dir)}"'

    header = [system_line(s) for s in systems]
    # Whole generations, then the first mappings of one more (with all its option mappings).
    per_gen = sum(1 for i in items if i.kind == "mapping")
    if args.count < per_gen:
        sys.exit(f"gen_mappings: --count must be at least {per_gen}")
    plan = [(g, i) for g in range(args.count // per_gen) for i in items]
    last, rest = args.count // per_gen, args.count % per_gen
    for i in items:
        if i.kind == "options" or rest > 0:
            plan.append((last, i))
            rest -= i.kind == "mapping"
    present = {(i.name, g) for g, i in plan}

    files, current, in_file, mappings = [], [], 0, 0
    for g, item in plan:
        current.append(copy_item(item, present, rng, g))
        if item.kind == "mapping":
            mappings += 1
            in_file += 1
        if in_file >= args.per_file:
            files.append(current)
            current, in_file = [], 0
    if current:
        files.append(current)

    total_lines = 0
    for n, blocks in enumerate(files):
        parts = ["\n".join(header)]
        if n == 0 and settings:
            parts.append("\n".join(settings))
        parts.extend("\n".join(b) for b in blocks)
        text = "\n\n".join(parts) + "\n"
        path = os.path.join(out_dir, f"generated-{n + 1:03}.map")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        total_lines += text.count("\n")
    print(mappings, total_lines, len(files))


if __name__ == "__main__":
    main()
