#!/usr/bin/env python3
"""Reads Business Central's default integration mappings out of Microsoft's AL source.

The AL text of codeunits 5334 "CRM Setup Defaults" and 7204 "CDS Setup Defaults" is read from a
clone of microsoft/BCApps at one commit (`git show <commit>:<path>`); the Dataverse column names
come from the "CRM ..." proxy tables of the same commit (their `ExternalName`). The result is a
YAML file with one entry per integration table mapping and its field mappings, in the order the
code inserts them. See README.md next to this file for how to run it.

Only a small part of AL is understood: procedures, `var` sections, Label declarations, comments,
`if ... then ... else ...`, `begin ... end` and simple statements. That is all the Reset...
procedures use; anything else in a statement is kept as text and ignored.
"""

import argparse
import re
import subprocess
import sys

import yaml

REPO = "microsoft/BCApps"
BASE = "src/Layers/W1/BaseApp/Integration"
CODEUNITS = [
    (f"{BASE}/Dataverse/CDSSetupDefaults.Codeunit.al", 'codeunit 7204 "CDS Setup Defaults"'),
    (f"{BASE}/D365Sales/CRMSetupDefaults.Codeunit.al", 'codeunit 5334 "CRM Setup Defaults"'),
]
TABLE_DIRS = [f"{BASE}/D365Sales", f"{BASE}/Dataverse"]
# GetDefaultDirection exits with nothing for a table it does not list: the Option's first member
# (Integration Table Mapping, field Direction: Bidirectional,ToIntegrationTable,FromIntegrationTable).
FIRST_MEMBER = "Bidirectional"
ARROWS = {"ToIntegrationTable": "->", "FromIntegrationTable": "<-", "Bidirectional": "<->"}


def git(git_dir, *args):
    return subprocess.run(
        ["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True
    ).stdout


# --- tokens -------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/|\#\w+[^\n]*"""  # blanks, comments, #if lines (dropped)
    r"""|(?P<str>'(?:[^']|'')*')"""  # 'text' ('' is a quote)
    r"""|(?P<qid>"[^"]*")"""  # "quoted identifier"
    r"""|(?P<op>::|:=|<>|<=|>=|[(),;.:=<>+\-*/\[\]])"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?)"""
    r"""|(?P<other>[^\s])""",  # anything else, one character
    re.S,
)


def tokens(text):
    out = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise SystemExit(f"cannot read AL at offset {pos}: {text[pos:pos + 40]!r}")
        pos = m.end()
        if m.lastgroup:
            out.append(m.group(m.lastgroup))
    return out


def unquote(tok):
    if tok.startswith('"'):
        return tok[1:-1]
    if tok.startswith("'"):
        return tok[1:-1].replace("''", "'")
    return tok


def kw(tok, word):
    return tok.lower() == word


# --- statements ---------------------------------------------------------------------------


class Parser:
    """Turns a procedure body into (statement tokens, conditions) pairs."""

    def __init__(self, toks):
        self.toks = toks
        self.i = 0
        self.out = []

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def block(self, conds):
        # after `begin`: statements up to the matching `end`
        while self.peek() is not None and not kw(self.peek(), "end"):
            self.statement(conds)
        self.i += 1  # end
        if self.peek() == ";":
            self.i += 1

    def statement(self, conds):
        tok = self.peek()
        if tok == ";":
            self.i += 1
        elif kw(tok, "begin"):
            self.i += 1
            self.block(conds)
        elif kw(tok, "if"):
            self.i += 1
            cond = self.until(lambda t, depth: depth == 0 and kw(t, "then"))
            self.i += 1  # then
            text = render(cond)
            self.statement(conds + [text])
            if self.peek() is not None and kw(self.peek(), "else"):
                self.i += 1
                self.statement(conds + [negate(text)])
        elif kw(tok, "case"):
            # not used around field mappings: skip to its `end`
            depth = 0
            while True:
                t = self.toks[self.i]
                self.i += 1
                if kw(t, "case") or kw(t, "begin"):
                    depth += 1
                elif kw(t, "end"):
                    depth -= 1
                    if depth == 0:
                        break
            if self.peek() == ";":
                self.i += 1
        else:
            stmt = self.until(
                lambda t, depth: depth == 0 and (t == ";" or kw(t, "else") or kw(t, "end"))
            )
            if not stmt and self.peek() != ";":
                raise SystemExit(f"unexpected {self.peek()!r} at token {self.i}")
            if self.peek() == ";":
                self.i += 1
            if stmt:
                self.out.append((stmt, conds))

    def until(self, stop):
        start, depth = self.i, 0
        while self.i < len(self.toks):
            t = self.toks[self.i]
            if stop(t, depth):
                break
            if t in "([":
                depth += 1
            elif t in ")]":
                depth -= 1
            self.i += 1
        return self.toks[start : self.i]


def negate(cond):
    if cond.startswith("not ") and "(" not in cond:
        return cond[4:]
    return f"not ({cond})"


def render(toks):
    """Tokens back to AL text, spaced as the code writes it."""
    out = ""
    for t in toks:
        if out and not (t in ".()::,;" or t == "::" or out[-1] in ".(" or out.endswith("::")):
            out += " "
        out += t
    return out


def split_args(toks):
    """The arguments of `Name ( ... )`, each a token list."""
    assert toks[1] == "(", toks
    args, cur, depth = [], [], 0
    for t in toks[2:]:
        if t in "([":
            depth += 1
        elif t in ")]":
            if depth == 0:
                args.append(cur)
                return args
            depth -= 1
        if t == "," and depth == 0:
            args.append(cur)
            cur = []
        else:
            cur.append(t)
    raise SystemExit(f"unclosed call: {' '.join(toks)}")


# --- procedures ---------------------------------------------------------------------------

PROC = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:local |internal )?procedure (\w+)\(", re.M)
RECORD_VAR = re.compile(r"(\w+)\s*:\s*Record\s+(\"[^\"]+\"|\w+)")
LABEL = re.compile(r"(\w+)\s*:\s*Label\s+'((?:[^']|'')*)'")


class Procedure:
    def __init__(self, name, text):
        self.name = name
        head, _, body = text.partition("\n    begin")
        self.records = {v: unquote(t) for v, t in RECORD_VAR.findall(head)}
        toks = tokens(body)
        parser = Parser(toks)
        parser.block([])  # the body, up to its `end`
        self.statements = parser.out


def procedures(text):
    starts = [(m.start(), m.group(1)) for m in PROC.finditer(text)]
    out = {}
    for n, (pos, name) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(text)
        out.setdefault(name, Procedure(name, text[pos:end]))
    return out


# --- Dataverse proxy tables ---------------------------------------------------------------

TABLE_HEAD = re.compile(r'^table \d+ ("[^"]+"|\w+)', re.M)
FIELD = re.compile(r"field\(\s*\d+\s*;\s*(\"[^\"]+\"|\w+)\s*;")
EXTERNAL = re.compile(r"ExternalName\s*=\s*'([^']*)'")


MEMBERS = re.compile(r"OptionMembers\s*=\s*([^;]*);")
CAPTIONS = re.compile(r"OptionCaption\s*=\s*'((?:[^']|'')*)'")
ORDINALS = re.compile(r"OptionOrdinalValues\s*=\s*([^;]*);")


class Column:
    """A proxy table field: its column name and, for an Option, members -> (caption, value)."""

    def __init__(self, name, body):
        self.name = name
        self.options = {}
        members = MEMBERS.search(body)
        if not members:
            return
        names = [unquote(t) for t in tokens(members.group(1)) if t != ","]
        captions = CAPTIONS.search(body)
        captions = unquote(f"'{captions.group(1)}'").split(",") if captions else names
        ordinals = ORDINALS.search(body)
        values = (
            [int(v) for v in ordinals.group(1).replace(" ", "").split(",")]
            if ordinals
            else list(range(len(names)))
        )
        for member, caption, value in zip(names, captions, values):
            self.options[member] = (caption, value)


def proxy_tables(git_dir, commit):
    """table name -> (entity, {field identifier -> Column}, path)"""
    out = {}
    for d in TABLE_DIRS:
        for path in git(git_dir, "ls-tree", "--name-only", f"{commit}:{d}").split():
            if not path.endswith(".Table.al"):
                continue
            full = f"{d}/{path}"
            text = git(git_dir, "show", f"{commit}:{full}")
            head = TABLE_HEAD.search(text)
            if not head:
                continue
            fields_at = text.find("fields")
            ext = EXTERNAL.search(text[:fields_at])
            if not ext:
                continue  # not a proxy of a Dataverse table
            fields = {}
            found = list(FIELD.finditer(text))
            for n, m in enumerate(found):
                end = found[n + 1].start() if n + 1 < len(found) else len(text)
                col = EXTERNAL.search(text, m.end(), end)
                if col:
                    fields[unquote(m.group(1))] = Column(col.group(1), text[m.end() : end])
            out[unquote(head.group(1))] = (ext.group(1), fields, full)
    return out


# --- the mappings -------------------------------------------------------------------------


class Extractor:
    def __init__(self, tables, labels):
        self.tables = tables
        self.labels = labels

    def direction(self, toks, local):
        if len(toks) == 1 and toks[0] in local:
            return local[toks[0]]
        if "::" in toks:
            return toks[toks.index("::") + 1]
        raise SystemExit(f"direction not understood: {' '.join(toks)}")

    def field(self, proc, toks):
        """`Var.FieldNo(Name)` -> (table, field identifier); `0` -> None."""
        if toks == ["0"]:
            return None
        if len(toks) == 6 and toks[1] == "." and toks[2] == "FieldNo":
            return proc.records[toks[0]], unquote(toks[4])
        raise SystemExit(f"{proc.name}: field not understood: {' '.join(toks)}")

    def option_of(self, proc, toks):
        """`Format(Var.Field::Member)` of a proxy table: the member's caption and value."""
        if toks[:2] == ["Format", "("] and "::" in toks and toks[3] == ".":
            table = proc.records.get(toks[2])
            return self.option(table, unquote(toks[4]), unquote(toks[toks.index("::") + 1]))
        return None

    def constant(self, toks):
        if len(toks) == 1 and toks[0].startswith("'"):
            value = unquote(toks[0])
            return value if value != "" else None
        if len(toks) == 1 and toks[0] in self.labels:
            return self.labels[toks[0]]
        if toks[0] == "Format" and "::" in toks:
            return unquote(toks[toks.index("::") + 1])
        raise SystemExit(f"constant not understood: {' '.join(toks)}")

    def dataverse(self, table, ident):
        entity, fields, _ = self.tables[table]
        if ident not in fields:
            raise SystemExit(f'no column for "{table}".{ident}')
        return fields[ident].name

    def option(self, table, ident, member):
        """(caption, value) of an Option member of a proxy table field, when known."""
        if table not in self.tables:
            return None
        column = self.tables[table][1].get(ident)
        return column.options.get(member) if column else None

    def mapping(self, proc, name, when, codeunit, default_direction):
        m = None
        local = {}
        for stmt, conds in proc.statements:
            head = stmt[0]
            if head == "InsertIntegrationTableMapping":
                a = split_args(stmt)
                bc = unquote(a[2][-1])
                dv = unquote(a[3][-1])
                m = {
                    "name": name,
                    "codeunit": codeunit,
                    "procedure": proc.name,
                    "when": when,  # always written: [] says "always"
                    "bc_table": bc,
                    "dataverse_table": dv,
                    "dataverse_entity": self.tables[dv][0],
                    "direction": default_direction(bc),
                    "arrow": None,
                    "synch_only_coupled_records": a[8] == ["true"],
                    "dependency_filter": [],
                    "fields": [],
                }
            elif m is None:
                continue
            elif head == "InsertIntegrationFieldMapping":
                a = split_args(stmt)
                bc = self.field(proc, a[1])
                dv = self.field(proc, a[2])
                direction = self.direction(a[3], local)
                field = {
                    "bc_field": bc[1] if bc else None,
                    "dataverse_field_al": dv[1] if dv else None,
                    "dataverse_field": self.dataverse(*dv) if dv else None,
                    "direction": direction,
                    "arrow": ARROWS[direction],
                }
                constant = self.constant(a[4])
                if constant is not None:
                    field["constant"] = constant
                    option = self.option_of(proc, a[4])
                    if option:
                        field["constant_caption"], field["constant_value"] = option
                field["validate_field"] = a[5] == ["true"]
                field["validate_integration_field"] = a[6] == ["true"]
                m["fields"].append(entry(field, conds))
            elif head == "SetIntegrationFieldMappingNotNull":
                m["fields"][-1]["not_null"] = True
            elif head == "SetIntegrationFieldMappingClearValueOnFailedSync":
                m["fields"][-1]["clear_value_on_failed_sync"] = True
            elif stmt[:4] == ["IntegrationTableMapping", ".", '"Dependency Filter"', ":="]:
                m["dependency_filter"].append(entry({"filter": unquote(stmt[4])}, conds))
            elif stmt[:4] == ["IntegrationTableMapping", ".", "Direction", ":="]:
                m["direction"] = self.direction(stmt[4:], local)
            elif len(stmt) > 2 and stmt[1] == ":=" and "Direction" in stmt:
                local[stmt[0]] = self.direction(stmt[2:], local)
        if m is None:
            raise SystemExit(f"{proc.name} inserts no table mapping")
        m["arrow"] = ARROWS[m["direction"]]
        return m


def entry(d, conds):
    if conds:
        d["when"] = conds
    return d


def default_directions(proc):
    """GetDefaultDirection: `case NAVTableID of DATABASE::X, ...: exit(...Direction::Y);`"""
    text = proc
    out = {}
    for group, direction in re.findall(
        r"((?:\s*DATABASE::(?:\"[^\"]+\"|\w+)\s*,?)+):\s*exit\([\w.]*Direction::(\w+)\)",
        text,
        re.I,
    ):
        for table in re.findall(r"DATABASE::(\"[^\"]+\"|\w+)", group, re.I):
            out[unquote(table)] = direction
    return out


def reset_calls(proc, labels):
    """(procedure, mapping name, conditions) for each `Reset...Mapping('NAME', ...)` call."""
    out = []
    for stmt, conds in proc.statements:
        if stmt[0].startswith("Reset") and stmt[0].endswith("Mapping") and stmt[1:2] == ["("]:
            arg = split_args(stmt)[0]
            name = unquote(arg[0]) if arg[0].startswith("'") else labels[arg[0]]
            out.append((stmt[0], name, conds))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git-dir", required=True, help="a clone of microsoft/BCApps (its .git)")
    ap.add_argument("--commit", required=True, help="the commit to read")
    args = ap.parse_args()
    commit = git(args.git_dir, "rev-parse", args.commit).strip()
    tables = proxy_tables(args.git_dir, commit)

    sources, mappings = [], []
    for path, codeunit in CODEUNITS:
        text = git(args.git_dir, "show", f"{commit}:{path}")
        last = git(args.git_dir, "log", "-1", "--format=%H", commit, "--", path).strip()
        sources.append({"path": path, "object": codeunit, "last_changed_in": last})
        labels = {k: v.replace("''", "'") for k, v in LABEL.findall(text)}
        procs = procedures(text)
        directions = default_directions(
            text[text.find("procedure GetDefaultDirection") :][:3000]
        )
        ex = Extractor(tables, labels)
        short = codeunit.split('"')[1]
        for proc_name, name, conds in reset_calls(procs["ResetConfiguration"], labels):
            proc = procs[proc_name]
            mappings.append(
                ex.mapping(proc, name, conds, short, lambda t: directions.get(t, FIRST_MEMBER))
            )

    used = sorted({m["dataverse_table"] for m in mappings})
    doc = {
        "source": {
            "repo": REPO,
            "commit": commit,
            "codeunits": sources,
            "proxy_tables": [{"table": t, "path": tables[t][2]} for t in used],
        },
        "mappings": mappings,
    }
    sys.stdout.write(HEADER.format(repo=REPO, commit=commit))
    yaml.dump(doc, sys.stdout, Dumper=NoAliases, sort_keys=False, allow_unicode=True, width=100)


class NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


HEADER = """\
# Business Central's default integration table and field mappings, read from Microsoft's AL
# source: {repo} @ {commit}
# (codeunits 7204 "CDS Setup Defaults" and 5334 "CRM Setup Defaults", procedure
# ResetConfiguration and the Reset...Mapping procedures it calls; Dataverse column names from the
# ExternalName of the "CRM ..." proxy tables of the same commit).
#
# GENERATED by tests/servers/api/bc-defaults/extract.py; do not edit by hand (README.md there says
# how to re-run it). Names are written as the AL code writes them: BC fields as in
# `Customer.FieldNo("Phone No.")`, Dataverse fields both as the proxy table's identifier
# (dataverse_field_al) and as the column's logical name (dataverse_field).
#
# `when` lists the AL conditions a mapping (in ResetConfiguration) or a field mapping (in its
# Reset procedure) is inserted under, as the code writes them. `direction` is the Integration
# Table Mapping's / Integration Field Mapping's Direction; `arrow` is the same in coupler's
# notation (-> to Dataverse, <- from Dataverse, <-> both). A field with bc_field null is a
# constant written to Dataverse; dataverse_field null, a constant written to Business Central.
# `constant` is the Constant Value as the code writes it (for `Format(X::Member)`, the member);
# for an Option of a proxy table, constant_caption / constant_value are the member's OptionCaption
# and OptionOrdinalValues entry (the Dataverse choice's label and value).
# not_null / clear_value_on_failed_sync are written only where the code sets them.
"""

if __name__ == "__main__":
    main()
