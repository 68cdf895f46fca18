//! Plan renderings for people (text) and for diagrams (Graphviz DOT, Mermaid).
//! All are deterministic: the same files give byte-identical output.

use super::{MappingPlan, Plan};
use crate::analysis::Arrow;
use std::fmt::Write;

pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let n = plan.mappings.len();
    let _ = writeln!(
        out,
        "plan: {} in {}",
        count(n, "mapping", "mappings"),
        count(plan.stages.len(), "stage", "stages")
    );
    for (i, stage) in plan.stages.iter().enumerate() {
        let together = if stage.len() > 1 {
            ", may run concurrently"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "\nstage {} ({}{together})",
            i + 1,
            count(stage.len(), "mapping", "mappings")
        );
        let width = stage.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        for name in stage {
            if let Some(m) = plan.mapping(name) {
                let off = match (&m.not_served, &m.when, m.enabled) {
                    (Some(_), _, _) => "  (left out: the endpoint does not serve it)".to_string(),
                    (None, Some(w), false) => format!("  (off: setting `{w}` is false)"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {name:<width$}  {} {} {}{off}",
                    m.left, m.direction, m.right
                );
            }
        }
        for p in plan.patches.iter().filter(|p| p.after_stage == i + 1) {
            let _ = writeln!(
                out,
                "  then patch {}.{} via {} (deferred lookup)",
                p.mapping, p.field, p.via
            );
        }
    }
    for m in &plan.mappings {
        out.push('\n');
        mapping_text(&mut out, m, plan);
    }
    out
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn mapping_text(out: &mut String, m: &MappingPlan, plan: &Plan) {
    let kind = if m.kind == "options" { "options " } else { "" };
    let _ = writeln!(
        out,
        "{kind}{}: {} {} {}  [stage {}]",
        m.name, m.left, m.direction, m.right, m.stage
    );
    if let Some(w) = &m.when {
        let state = if m.enabled { "on" } else { "off" };
        let _ = writeln!(out, "  runs only when setting `{w}` is true (now {state})");
    }
    if let Some(why) = &m.not_served {
        let _ = writeln!(out, "  left out with this profile: {why}");
    }
    depends_text(out, m);
    filters_text(out, m);
    company_text(out, m);
    for g in &m.couple_by {
        let pairs: Vec<String> = g.pairs.iter().map(|(a, b)| format!("{a} == {b}")).collect();
        let case = if g.ignore_case { ", ignoring case" } else { "" };
        let _ = writeln!(out, "  match {}: {}{case}", g.priority, pairs.join(" and "));
    }
    if let Some(b) = &m.blank {
        let prefix = format!("{}.", b.system);
        let blank_side = if m.left.starts_with(&prefix) {
            &m.right
        } else {
            &m.left
        };
        let _ = writeln!(
            out,
            "  a blank {blank_side} key stands for the record `{b}` names, and that record for a blank key"
        );
    }
    if let Some(o) = &m.options {
        let _ = writeln!(
            out,
            "  codes of `{}` become labels of `{}`",
            o.key_field, o.option_field
        );
        for (code, label) in &o.pairs {
            let _ = writeln!(out, "    '{code}' = '{label}'");
        }
        if o.create_missing {
            let _ = writeln!(
                out,
                "  a code without a matching label becomes a new option value (label = the code)"
            );
            for a in &o.also {
                let _ = writeln!(out, "    also added to `{a}`");
            }
        } else {
            let _ = writeln!(
                out,
                "  a code without a matching label is skipped and the option stays blank"
            );
        }
    }
    steps_text(out, m);
    own_changes_text(out, m);
    for l in &m.left_out {
        let _ = writeln!(
            out,
            "  left out with this profile: {} ({}); neither read nor written",
            l.field, l.reason
        );
    }
    split_text(out, m);
    if let Some(c) = &m.couple_via {
        let _ = writeln!(
            out,
            "  couplings: those of {} (updates them only; never couples or creates)",
            quoted(c)
        );
    }
    for p in plan.patches.iter().filter(|p| p.mapping == m.name) {
        let _ = writeln!(
            out,
            "  deferred: {} via {}, patched after stage {}",
            p.field, p.via, p.after_stage
        );
    }
    for c in &m.create_values {
        let _ = writeln!(
            out,
            "  on create in {}: {} = {}",
            c.system, c.field, c.value
        );
    }
    let mut policies = vec![format!("on missing: {}", m.policies.missing)];
    if let Some(c) = &m.policies.conflict {
        policies.push(format!("on conflict: {c}"));
    }
    policies.push(format!("on delete: {}", m.policies.delete));
    let _ = writeln!(out, "  policies: {}", policies.join("; "));
    if let Some(s) = &m.schedule {
        let idle = s
            .idle
            .as_ref()
            .map(|i| format!(", idle {i}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  schedule: every {}{idle}", s.every);
    }
    for k in &m.keys {
        let _ = writeln!(out, "  key {}: {}", k.system, k.field);
    }
    for k in &m.watermarks {
        let _ = writeln!(out, "  watermark {}: {}", k.system, k.field);
    }
}

/// `after:` one entry per mapping depended on: `CURRENCY (via transactioncurrencyid; after)`.
fn depends_text(out: &mut String, m: &MappingPlan) {
    if !m.depends_on.is_empty() {
        // One entry per mapping depended on: `CURRENCY (via transactioncurrencyid; after)`.
        let mut deps: Vec<(String, Vec<String>)> = Vec::new();
        for e in &m.depends_on {
            let why = match &e.field {
                Some(f) => format!("{} {f}", e.kind),
                None => e.kind.to_string(),
            };
            match deps.iter_mut().find(|(n, _)| *n == e.mapping) {
                Some((_, whys)) => whys.push(why),
                None => deps.push((e.mapping.clone(), vec![why])),
            }
        }
        let deps: Vec<String> = deps
            .into_iter()
            .map(|(n, whys)| format!("{} ({})", quoted(&n), whys.join("; ")))
            .collect();
        let _ = writeln!(out, "  after: {}", deps.join(", "));
    }
}

/// Each `where` with the `$filter` it becomes and what coupler checks itself.
fn filters_text(out: &mut String, m: &MappingPlan) {
    for f in &m.filters {
        let _ = writeln!(out, "  filter {}: {}", f.system, f.expression);
        match &f.odata {
            Some(q) => {
                let _ = writeln!(out, "    $filter: {q}");
            }
            None if f.rest.is_none() => {
                let _ = writeln!(out, "    $filter: (none: every record is read)");
            }
            None => {
                let _ = writeln!(
                    out,
                    "    $filter: (none: the endpoint cannot evaluate it; coupler does after reading)"
                );
            }
        }
        if let Some(l) = &f.local {
            let _ = writeln!(out, "    checked by coupler after reading: {l}");
        }
        for v in &f.value_sets {
            let _ = writeln!(
                out,
                "    checked by coupler, not in $filter: {v} (a record it leaves out is skipped with the reason)"
            );
        }
        let _ = writeln!(out, "    store:   {}", f.store);
    }
}

/// Each scoped side's company filter, pushed down like a `where`, and the stamp on writes.
fn company_text(out: &mut String, m: &MappingPlan) {
    for c in &m.company {
        let _ = writeln!(
            out,
            "  company {}.{}: {} is the profile's company or empty (added to every read)",
            c.system, c.table, c.column
        );
        let _ = writeln!(out, "    $filter: {}", c.odata);
        let _ = writeln!(out, "    store:   {}", c.store);
        let _ = writeln!(
            out,
            "    writes:  {} = <company> on every record written",
            c.column
        );
    }
}

/// The field steps of each direction, with their transforms, lookups and modifiers.
fn steps_text(out: &mut String, m: &MappingPlan) {
    for (arrow, towards) in [("->", right_system(m)), ("<-", left_system(m))] {
        let steps: Vec<_> = m.steps.iter().filter(|s| s.direction == arrow).collect();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  fields to {towards}:");
        let width = steps
            .iter()
            .map(|s| s.source.chars().count())
            .max()
            .unwrap_or(0);
        for s in steps {
            let mut line = format!("    {:<width$} -> ", s.source);
            if let Some(w) = &s.when {
                let _ = write!(line, "(when {w}) ");
            }
            for t in &s.transforms {
                let _ = write!(line, "{t} -> ");
            }
            line.push_str(&s.target);
            if let Some(v) = &s.via {
                let _ = write!(line, "  via {v}");
            }
            if let Some(t) = &s.through {
                let _ = write!(line, " {t}");
            }
            if !s.modifiers.is_empty() {
                let _ = write!(line, "  [{}]", s.modifiers.join(", "));
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

/// Loop prevention of a bidirectional mapping's passes (one-way mappings always read them).
fn own_changes_text(out: &mut String, m: &MappingPlan) {
    if m.direction != Arrow::Both {
        return;
    }
    for o in &m.own_changes {
        let _ = match &o.one_way {
            _ if o.left_out => writeln!(
                out,
                "  reading {}: what the integration user changed is left out (loop prevention)",
                o.reads
            ),
            Some(line) => writeln!(
                out,
                "  reading {}: what the integration user changed is read too ({line} flows one way)",
                o.reads
            ),
            None => Ok(()),
        };
    }
}

/// `split`: the parts and the fields of each extra record.
fn split_text(out: &mut String, m: &MappingPlan) {
    if let Some(sp) = &m.split {
        let numbered = sp
            .numbered
            .as_ref()
            .map(|n| format!(", numbered after the record's {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  split: {} in parts of {}: the first to {}, each further part to an extra record{numbered}:",
            sp.source, sp.every, sp.into
        );
        for s in &sp.steps {
            let mut line = format!("    {} -> ", s.source);
            for t in &s.transforms {
                let _ = write!(line, "{t} -> ");
            }
            line.push_str(&s.target);
            if let Some(v) = &s.via {
                let _ = write!(line, "  via {v}");
            }
            if let Some(t) = &s.through {
                let _ = write!(line, " {t}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let _ = writeln!(out, "    (part) -> {}", sp.into);
    }
}

fn left_system(m: &MappingPlan) -> &str {
    m.left.split('.').next().unwrap_or("")
}

fn right_system(m: &MappingPlan) -> &str {
    m.right.split('.').next().unwrap_or("")
}

/// A mapping name as it is written in a mapping file.
fn quoted(name: &str) -> String {
    crate::syntax::printer::mapping_name(&crate::syntax::ast::Ident {
        name: name.to_string(),
        quoted: false,
        span: Default::default(),
    })
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz: nodes grouped by stage, edges from a mapping to those that need it, labelled with
/// the field that creates them; deferred lookups dashed.
pub fn render_dot(plan: &Plan) -> String {
    let mut out = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (i, stage) in plan.stages.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_stage_{} {{\n    label=\"stage {}\";\n    style=dashed;",
            i + 1,
            i + 1
        );
        for name in stage {
            if let Some(m) = plan.mapping(name) {
                let off = match (&m.when, m.enabled) {
                    (Some(w), false) => format!(
                        "\\n(off: {})\", style=dashed, fontcolor=gray50, color=gray50",
                        dot_escape(w)
                    ),
                    _ => "\"".to_string(),
                };
                let _ = writeln!(
                    out,
                    "    \"{}\" [label=\"{}\\n{} {} {}{off}];",
                    dot_escape(name),
                    dot_escape(name),
                    dot_escape(&m.left),
                    m.direction,
                    dot_escape(&m.right)
                );
            }
        }
        out.push_str("  }\n");
    }
    for m in &plan.mappings {
        for e in m.depends_on.iter().filter(|e| plan.contains(&e.mapping)) {
            let label = e.field.clone().unwrap_or_else(|| e.kind.to_string());
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{}\"];",
                dot_escape(&e.mapping),
                dot_escape(&m.name),
                dot_escape(&label)
            );
        }
    }
    for p in plan.patches.iter().filter(|p| plan.contains(&p.via)) {
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{} (deferred)\", style=dashed, constraint=false];",
            dot_escape(&p.via),
            dot_escape(&p.mapping),
            dot_escape(&p.field)
        );
    }
    out.push_str("}\n");
    out
}

fn mermaid_text(s: &str) -> String {
    s.replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('|', "#124;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// Mermaid (renders in GitHub Markdown): same graph as DOT.
pub fn render_mermaid(plan: &Plan) -> String {
    let ids: std::collections::HashMap<&str, String> = plan
        .mappings
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), format!("m{i}")))
        .collect();
    let id = |name: &str| ids.get(name).cloned().unwrap_or_default();
    let mut out = String::from("flowchart LR\n");
    for (i, stage) in plan.stages.iter().enumerate() {
        let _ = writeln!(out, "  subgraph stage{}[\"stage {}\"]", i + 1, i + 1);
        for name in stage {
            if let Some(m) = plan.mapping(name) {
                let off = match (&m.when, m.enabled) {
                    (Some(w), false) => format!("<br/>(off: {})", mermaid_text(w)),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "    {}[\"{}<br/>{} {} {}{off}\"]",
                    id(name),
                    mermaid_text(name),
                    mermaid_text(&m.left),
                    mermaid_text(m.direction.as_str()),
                    mermaid_text(&m.right)
                );
            }
        }
        out.push_str("  end\n");
    }
    for m in &plan.mappings {
        for e in m.depends_on.iter().filter(|e| plan.contains(&e.mapping)) {
            let label = e.field.clone().unwrap_or_else(|| e.kind.to_string());
            let _ = writeln!(
                out,
                "  {} -->|\"{}\"| {}",
                id(&e.mapping),
                mermaid_text(&label),
                id(&m.name)
            );
        }
    }
    for p in plan.patches.iter().filter(|p| plan.contains(&p.via)) {
        let _ = writeln!(
            out,
            "  {} -.->|\"{} (deferred)\"| {}",
            id(&p.via),
            mermaid_text(&p.field),
            id(&p.mapping)
        );
    }
    out
}
