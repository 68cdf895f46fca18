//! The canonical printer behind `coupler fmt`: one layout, comments kept, idempotent.
//!
//! Comments are not in the tree; they are attached here by position. Each line-level node takes
//! the comments between its predecessor (in source order) and itself, those inside it, and the
//! one that trails it on its last line. So clauses can be put in canonical order with their
//! comments, and no comment is ever dropped (stragglers go to the end of the file).

use super::ast::*;
use crate::source::Span;

const INDENT: &str = "    ";

/// Prints a parsed file in canonical form. `text` is the source the AST came from.
pub fn print_file(file: &File, text: &str) -> String {
    let mut p = Printer {
        text,
        comments: &file.comments,
        used: vec![false; file.comments.len()],
        out: String::new(),
    };
    p.file(file);
    p.out
}

struct Printer<'a> {
    text: &'a str,
    comments: &'a [Comment],
    used: Vec<bool>,
    out: String,
}

/// What a node brings with it: comment lines above, and a comment at the end of its line.
#[derive(Default)]
struct Attached {
    leading: Vec<String>,
    trailing: Option<String>,
    blank_before: bool,
}

impl<'a> Printer<'a> {
    fn take_range(&mut self, start: u32, end: u32) -> Vec<String> {
        let mut taken = Vec::new();
        for (i, c) in self.comments.iter().enumerate() {
            if !self.used[i] && c.span.start >= start && c.span.start < end {
                self.used[i] = true;
                taken.push(format!("#{}", c.text.trim_end()));
            }
        }
        taken
    }

    fn take_trailing(&mut self, end: u32) -> Option<String> {
        let line_end = self.text[end as usize..]
            .find('\n')
            .map(|i| end as usize + i)
            .unwrap_or(self.text.len()) as u32;
        let mut found = self.take_range(end, line_end);
        // Only one comment can trail a line.
        found.pop()
    }

    /// Comments for a sequence of nodes given in source order: leading, interior and trailing.
    fn attach(&mut self, from: u32, spans: &[(Span, bool)]) -> Vec<Attached> {
        let mut prev = from;
        let mut result = Vec::new();
        for &(span, is_leaf) in spans {
            let mut a = Attached {
                blank_before: self.blank_between(prev, span.start),
                ..Default::default()
            };
            a.leading = self.take_range(prev, span.start);
            if is_leaf {
                a.leading.extend(self.take_range(span.start, span.end));
            }
            a.trailing = self.take_trailing(span.end);
            prev = span.end;
            result.push(a);
        }
        result
    }

    /// Whether the source had an empty line between `from` and the next thing at or before `to`.
    fn blank_between(&self, from: u32, to: u32) -> bool {
        let slice = &self.text[from as usize..to as usize];
        // Look only up to the first comment: an empty line above a comment belongs to it.
        let slice = slice.split('#').next().unwrap_or("");
        slice.matches('\n').count() >= 2
    }

    fn push_line(&mut self, indent: usize, line: &str, trailing: Option<&str>) {
        for _ in 0..indent {
            self.out.push_str(INDENT);
        }
        self.out.push_str(line);
        if let Some(t) = trailing {
            self.out.push_str("  ");
            self.out.push_str(t);
        }
        self.out.push('\n');
    }

    fn leading(&mut self, indent: usize, a: &Attached) {
        for c in &a.leading {
            self.push_line(indent, c, None);
        }
    }

    fn file(&mut self, file: &File) {
        let spans: Vec<(Span, bool)> = file
            .items
            .iter()
            .map(|i| (i.span(), matches!(i, Item::System(_) | Item::Options(_))))
            .collect();
        // Container items take their interior comments themselves.
        let attached = self.attach(0, &spans);
        let system_widths = system_widths(&file.items);
        let mut prev_was_system = false;
        for (idx, (item, a)) in file.items.iter().zip(attached).enumerate() {
            let is_system = matches!(item, Item::System(_));
            if idx > 0 && !(is_system && prev_was_system && !a.blank_before) {
                self.out.push('\n');
            }
            self.leading(0, &a);
            match item {
                Item::System(s) => {
                    let line = format!(
                        "system {:<nw$} = {:<kw$} {}",
                        ident(&s.name),
                        ident(&s.kind),
                        dquote(&s.schema.value),
                        nw = system_widths.0,
                        kw = system_widths.1
                    );
                    match &s.company {
                        None => self.push_line(0, line.trim_end(), a.trailing.as_deref()),
                        Some(c) => {
                            self.push_line(0, line.trim_end(), None);
                            let lines = company_lines(c);
                            let last = lines.len() - 1;
                            for (i, l) in lines.iter().enumerate() {
                                let trailing = (i == last).then_some(a.trailing.as_deref());
                                self.push_line(1, l, trailing.flatten());
                            }
                        }
                    }
                }
                Item::Settings(s) => self.settings(s, a.trailing.as_deref()),
                Item::Mapping(m) => self.mapping(m, a.trailing.as_deref()),
                Item::Options(o) => self.options(o, a.trailing.as_deref()),
            }
            prev_was_system = is_system;
        }
        let rest = self.take_range(0, u32::MAX);
        if !rest.is_empty() {
            if !self.out.is_empty() {
                self.out.push('\n');
            }
            for c in rest {
                self.push_line(0, &c, None);
            }
        }
    }

    fn settings(&mut self, s: &SettingsDecl, trailing: Option<&str>) {
        self.push_line(0, "settings {", trailing);
        self.assignments(1, s.span.start, &s.settings, s.close);
        self.push_line(0, "}", None);
    }

    fn assignments(&mut self, indent: usize, from: u32, values: &[Assignment], close: Span) {
        let spans: Vec<(Span, bool)> = values.iter().map(|v| (v.span, true)).collect();
        let attached = self.attach(from + 1, &spans);
        let width = values
            .iter()
            .map(|v| ident(&v.field).chars().count())
            .max()
            .unwrap_or(0);
        for (v, a) in values.iter().zip(attached) {
            self.leading(indent, &a);
            let line = format!("{:<width$} = {}", ident(&v.field), v.value.source_text());
            self.push_line(indent, &line, a.trailing.as_deref());
        }
        let last = values.last().map(|v| v.span.end).unwrap_or(from + 1);
        for c in self.take_range(last, close.start) {
            self.push_line(indent, &c, None);
        }
    }

    fn options(&mut self, o: &OptionsDecl, trailing: Option<&str>) {
        let head = format!(
            "options {}: {} {} {}",
            mapping_name(&o.name),
            field_ref(&o.left),
            o.arrow.dir.as_str(),
            field_ref(&o.right)
        );
        let clauses = option_clauses(o);
        let Some(close) = o.close else {
            self.push_line(0, &head, trailing);
            for c in &clauses {
                self.push_line(1, c, None);
            }
            return;
        };
        if clauses.is_empty() {
            self.push_line(0, &format!("{head} {{"), trailing);
        } else {
            self.push_line(0, &head, trailing);
            let last = clauses.len() - 1;
            for (i, c) in clauses.iter().enumerate() {
                let brace = if i == last { " {" } else { "" };
                self.push_line(1, &format!("{c}{brace}"), None);
            }
        }
        let spans: Vec<(Span, bool)> = o.pairs.iter().map(|p| (p.span, true)).collect();
        let start = o.right.span.end;
        let attached = self.attach(start, &spans);
        let width = o
            .pairs
            .iter()
            .map(|p| quote_str(&p.code.value).chars().count())
            .max()
            .unwrap_or(0);
        for (p, a) in o.pairs.iter().zip(attached) {
            self.leading(1, &a);
            let line = format!(
                "{:<width$} = {},",
                quote_str(&p.code.value),
                quote_str(&p.label.value)
            );
            self.push_line(1, &line, a.trailing.as_deref());
        }
        let last = o.pairs.last().map(|p| p.span.end).unwrap_or(start);
        for c in self.take_range(last, close.start) {
            self.push_line(1, &c, None);
        }
        self.push_line(0, "}", None);
    }

    fn mapping(&mut self, m: &MappingDecl, trailing: Option<&str>) {
        let head = format!(
            "mapping {}: {} {} {} {{",
            mapping_name(&m.name),
            table_ref(&m.left),
            m.arrow.dir.as_str(),
            table_ref(&m.right)
        );
        self.push_line(0, &head, trailing);
        let spans: Vec<(Span, bool)> = m
            .clauses
            .iter()
            .map(|c| {
                (
                    c.span(),
                    !matches!(
                        c,
                        Clause::Fields(_) | Clause::CreateValues(_) | Clause::Split(_)
                    ),
                )
            })
            .collect();
        let attached = self.attach(m.right.span.end, &spans);
        let mut order: Vec<usize> = (0..m.clauses.len()).collect();
        order.sort_by_key(|&i| m.clauses[i].rank());
        let mut attached: Vec<Option<Attached>> = attached.into_iter().map(Some).collect();
        let mut prev_rank = None;
        for i in order {
            let clause = &m.clauses[i];
            let a = attached[i].take().unwrap_or_default();
            // A block clause stands apart from the one-line clauses before it.
            let is_block = matches!(
                clause,
                Clause::Fields(_) | Clause::CreateValues(_) | Clause::Split(_)
            );
            if is_block && prev_rank.is_some() {
                self.out.push('\n');
            }
            self.leading(1, &a);
            self.clause(clause, a.trailing.as_deref());
            prev_rank = Some(clause.rank());
        }
        let last = m
            .clauses
            .iter()
            .map(|c| c.span().end)
            .max()
            .unwrap_or(m.right.span.end);
        for c in self.take_range(last, m.close.start) {
            self.push_line(1, &c, None);
        }
        self.push_line(0, "}", None);
    }

    fn clause(&mut self, clause: &Clause, trailing: Option<&str>) {
        let line = match clause {
            Clause::Where(w) => format!("where {}: {}", ident(&w.system), expr(&w.expr)),
            Clause::Couple(c) => {
                let pairs: Vec<String> = c
                    .pairs
                    .iter()
                    .map(|p| format!("{} == {}", ident(&p.left), ident(&p.right)))
                    .collect();
                let case = if c.ignore_case { " ignoring case" } else { "" };
                format!("couple by {}{case}", pairs.join(" and "))
            }
            Clause::After(a) => {
                let names: Vec<String> = a.names.iter().map(mapping_name).collect();
                format!("after {}", names.join(", "))
            }
            Clause::Policy(p) => match &p.policy {
                Policy::Missing(MissingPolicy::Create) => "on missing: create".into(),
                Policy::Missing(MissingPolicy::Skip) => "on missing: skip".into(),
                Policy::Conflict(ConflictPolicy::Log) => "on conflict: log".into(),
                Policy::Conflict(ConflictPolicy::Wins(s)) => {
                    format!("on conflict: {} wins", s.name)
                }
                Policy::Delete(DeletePolicy::Restore) => "on delete: restore".into(),
                Policy::Delete(DeletePolicy::Uncouple) => "on delete: uncouple".into(),
                Policy::Delete(DeletePolicy::Ignore) => "on delete: ignore".into(),
            },
            Clause::Schedule(s) => match &s.idle {
                Some(idle) => format!("schedule every {} idle {}", s.every.raw, idle.raw),
                None => format!("schedule every {}", s.every.raw),
            },
            Clause::Key(k) => format!("key {}: {}", ident(&k.system), ident(&k.field)),
            Clause::Watermark(k) => format!("watermark {}: {}", ident(&k.system), ident(&k.field)),
            Clause::When(w) => format!("when {}", ident(&w.setting)),
            Clause::Blank(b) => format!("blank is {}", field_ref(&b.target)),
            Clause::CreateValues(c) => {
                self.push_line(1, &format!("on create {} {{", ident(&c.system)), trailing);
                self.assignments(2, c.system.span.end, &c.values, c.close);
                self.push_line(1, "}", None);
                return;
            }
            Clause::Fields(f) => {
                let head = match &f.condition {
                    Some(c) => format!("fields when {}: {} {{", ident(&c.system), expr(&c.expr)),
                    None => "fields {".to_string(),
                };
                self.push_line(1, &head, trailing);
                self.fields(f);
                self.push_line(1, "}", None);
                return;
            }
            Clause::CoupleVia(c) => format!("couple via {}", mapping_name(&c.mapping)),
            Clause::Split(c) => {
                let mut head = format!(
                    "split {} every {} into {}",
                    ident(&c.field),
                    c.every.source_text(),
                    ident(&c.into)
                );
                if let Some(n) = &c.numbered {
                    head.push_str(&format!(" numbered {}", ident(n)));
                }
                head.push_str(" {");
                self.push_line(1, &head, trailing);
                self.fields(&c.body);
                self.push_line(1, "}", None);
                return;
            }
        };
        self.push_line(1, &line, trailing);
    }

    fn fields(&mut self, f: &FieldsBlock) {
        let spans: Vec<(Span, bool)> = f.lines.iter().map(|l| (l.span, true)).collect();
        let attached = self.attach(f.span.start, &spans);
        let width = f
            .lines
            .iter()
            .map(|l| operand(&l.left).chars().count())
            .max()
            .unwrap_or(0);
        let arrow_width = f
            .lines
            .iter()
            .map(|l| l.arrow.dir.as_str().len())
            .max()
            .unwrap_or(2);
        for (idx, (l, a)) in f.lines.iter().zip(attached).enumerate() {
            if idx > 0 && a.blank_before {
                self.out.push('\n');
            }
            self.leading(2, &a);
            let mut line = format!(
                "{:<width$} {:>aw$} {}",
                operand(&l.left),
                l.arrow.dir.as_str(),
                operand(&l.right),
                aw = arrow_width
            );
            if let Some(v) = &l.via {
                line.push_str(" via ");
                line.push_str(&mapping_name(v));
            }
            if let Some(t) = &l.through {
                line.push_str(&through(t));
            }
            for t in &l.transforms {
                line.push_str(" | ");
                line.push_str(&call(t));
            }
            if !l.modifiers.is_empty() {
                let mods: Vec<&str> = l.modifiers.iter().map(|m| m.words.as_str()).collect();
                line.push_str(&format!(" [{}]", mods.join(", ")));
            }
            self.push_line(2, &line, a.trailing.as_deref());
        }
        let last = f.lines.last().map(|l| l.span.end).unwrap_or(f.span.start);
        for c in self.take_range(last, f.close.start) {
            self.push_line(2, &c, None);
        }
    }
}

/// `company COLUMN` and, on its own lines, `except A, B, ...` wrapped before 100 columns.
fn company_lines(c: &CompanyScope) -> Vec<String> {
    let mut lines = vec![format!("company {}", ident(&c.column))];
    let mut line = String::from("except");
    for (i, name) in c.except.iter().enumerate() {
        let word = ident(name);
        let comma = if i + 1 < c.except.len() { "," } else { "" };
        if i > 0 && INDENT.len() + line.len() + 1 + word.len() + comma.len() > 100 {
            lines.push(std::mem::replace(&mut line, " ".repeat("except".len())));
        }
        line.push(' ');
        line.push_str(&word);
        line.push_str(comma);
    }
    if !c.except.is_empty() {
        lines.push(line);
    }
    lines
}

fn system_widths(items: &[Item]) -> (usize, usize) {
    let mut w = (0, 0);
    for i in items {
        if let Item::System(s) = i {
            w.0 = w.0.max(ident(&s.name).chars().count());
            w.1 = w.1.max(ident(&s.kind).chars().count());
        }
    }
    w
}

/// Whether a name can be written without quotes.
fn is_bare(name: &str, allow_dash: bool) -> bool {
    const RESERVED: [&str; 8] = ["and", "or", "not", "in", "via", "true", "false", "null"];
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let bytes = name.as_bytes();
    let rest_ok = name.char_indices().skip(1).all(|(i, c)| {
        c.is_ascii_alphanumeric()
            || c == '_'
            || (allow_dash
                && c == '-'
                && bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_'))
    });
    first_ok && rest_ok && !RESERVED.contains(&name)
}

pub fn ident(i: &Ident) -> String {
    if is_bare(&i.name, false) {
        i.name.clone()
    } else {
        format!("\"{}\"", i.name)
    }
}

pub fn mapping_name(i: &Ident) -> String {
    if is_bare(&i.name, true) {
        i.name.clone()
    } else {
        format!("\"{}\"", i.name)
    }
}

fn dquote(s: &str) -> String {
    if s.contains('"') {
        quote_str(s)
    } else {
        format!("\"{s}\"")
    }
}

pub fn table_ref(t: &TableRef) -> String {
    format!("{}.{}", ident(&t.system), ident(&t.table))
}

pub fn field_ref(f: &FieldRef) -> String {
    format!(
        "{}.{}.{}",
        ident(&f.system),
        ident(&f.table),
        ident(&f.field)
    )
}

fn operand(o: &Operand) -> String {
    match o {
        Operand::Field(i) => ident(i),
        Operand::Const(l) => l.source_text(),
    }
}

pub fn call(c: &Call) -> String {
    if let Some(entries) = &c.map {
        let items: Vec<String> = entries
            .iter()
            .map(|e| format!("{} => {}", e.from.source_text(), e.to.source_text()))
            .collect();
        return if items.is_empty() {
            "map {}".into()
        } else {
            format!("map {{ {} }}", items.join(", "))
        };
    }
    if c.args.is_empty() {
        return ident(&c.name);
    }
    let args: Vec<String> = c.args.iter().map(Literal::source_text).collect();
    format!("{}({})", ident(&c.name), args.join(", "))
}

/// ` through T(FROM -> TO where EXPR)`
pub fn through(t: &Through) -> String {
    let filter = t
        .filter
        .as_ref()
        .map(|e| format!(" where {}", expr(e)))
        .unwrap_or_default();
    format!(
        " through {}({} -> {}{filter})",
        table_ref(&t.table),
        ident(&t.from),
        ident(&t.to)
    )
}

pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Or(parts, _) => parts.iter().map(expr).collect::<Vec<_>>().join(" or "),
        Expr::And(parts, _) => parts.iter().map(expr).collect::<Vec<_>>().join(" and "),
        Expr::Not(inner, _) => format!("not {}", expr(inner)),
        Expr::Paren(inner, _) => format!("({})", expr(inner)),
        Expr::Compare(c) => format!(
            "{} {} {}",
            ident(&c.field),
            c.op.as_str(),
            c.value.source_text()
        ),
        Expr::In(i) => {
            let values: Vec<String> = i.values.iter().map(Literal::source_text).collect();
            let not = if i.negated { "not " } else { "" };
            format!("{} {not}in ({})", ident(&i.field), values.join(", "))
        }
        Expr::InSet(i) => {
            let not = if i.negated { "not " } else { "" };
            format!("{} is {not}{}", ident(&i.field), i.set.name)
        }
    }
}

/// The clauses of an options declaration, one a line under its head: `create missing`, `also`,
/// `schedule every`.
fn option_clauses(o: &OptionsDecl) -> Vec<String> {
    let mut lines = Vec::new();
    if o.create_missing.is_some() {
        lines.push("create missing".to_string());
    }
    if !o.also.is_empty() {
        let refs: Vec<String> = o.also.iter().map(field_ref).collect();
        lines.push(format!("also {}", refs.join(", ")));
    }
    if let Some(s) = &o.schedule {
        lines.push(match &s.idle {
            Some(idle) => format!("schedule every {} idle {}", s.every.raw, idle.raw),
            None => format!("schedule every {}", s.every.raw),
        });
    }
    lines
}
