//! Lowering: the only place that sees pest pairs. Turns them into the typed AST of `ast.rs`
//! and turns pest errors into diagnostics that name what was expected.

use super::ast::*;
use super::parser::Rule;
use crate::diagnostic::{codes, suggest, Diagnostic};
use crate::source::{FileId, Span};
use pest::iterators::Pair;
use rust_decimal::Decimal;
use std::str::FromStr;

pub struct Lowerer<'t> {
    file: FileId,
    text: &'t str,
    /// Comment ranges, sorted: trivia that node spans must not end in.
    comments: Vec<(usize, usize)>,
    pub diagnostics: Vec<Diagnostic>,
}

type P<'i> = Pair<'i, Rule>;

/// Children of a pair without the comment pairs pest interleaves.
fn kids(pair: P<'_>) -> impl Iterator<Item = P<'_>> {
    pair.into_inner().filter(|p| p.as_rule() != Rule::COMMENT)
}

impl<'t> Lowerer<'t> {
    pub fn new(file: FileId, text: &'t str) -> Lowerer<'t> {
        Lowerer {
            file,
            text,
            comments: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    /// A pair's span without the whitespace and comments pest lets trailing optional parts
    /// swallow: a node ends at its last token.
    fn span(&self, pair: &P<'_>) -> Span {
        let s = pair.as_span();
        let (start, mut end) = (s.start(), s.end());
        let bytes = self.text.as_bytes();
        loop {
            while end > start && bytes[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            let inside = self.comments.partition_point(|c| c.0 < end);
            match inside.checked_sub(1).map(|i| self.comments[i]) {
                Some((cs, ce)) if end <= ce && cs >= start => end = cs,
                _ => break,
            }
        }
        Span::new(self.file, start, end)
    }

    pub fn lower_file(&mut self, pair: P<'_>) -> File {
        self.comments = pair
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| p.as_rule() == Rule::COMMENT)
            .map(|p| (p.as_span().start(), p.as_span().end()))
            .collect();
        self.comments.sort();
        let span = self.span(&pair);
        let comments = pair
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| p.as_rule() == Rule::COMMENT)
            .map(|p| Comment {
                text: p.as_str()[1..].trim_end_matches('\r').to_string(),
                span: self.span(&p),
            })
            .collect();
        let mut items = Vec::new();
        for p in kids(pair) {
            match p.as_rule() {
                Rule::system_decl => items.push(Item::System(self.lower_system(p))),
                Rule::settings_decl => items.push(Item::Settings(self.lower_settings(p))),
                Rule::mapping_decl => items.push(Item::Mapping(self.lower_mapping(p))),
                Rule::options_decl => items.push(Item::Options(self.lower_options(p))),
                _ => {}
            }
        }
        File {
            items,
            comments,
            span,
        }
    }

    fn lower_ident(&self, pair: P<'_>) -> Ident {
        let span = self.span(&pair);
        let inner = kids(pair.clone()).next();
        match inner {
            Some(p) if p.as_rule() == Rule::quoted_ident => {
                let text = kids(p).next().map(|q| q.as_str()).unwrap_or("");
                Ident {
                    name: text.to_string(),
                    quoted: true,
                    span,
                }
            }
            Some(p) => Ident {
                name: p.as_str().to_string(),
                quoted: false,
                span,
            },
            None => Ident {
                name: pair.as_str().to_string(),
                quoted: false,
                span,
            },
        }
    }

    fn lower_system(&mut self, pair: P<'_>) -> SystemDecl {
        let span = self.span(&pair);
        let mut it = kids(pair).filter(|p| p.as_rule() != Rule::kw_system);
        let name = self.lower_ident(it.next().expect("grammar: system name"));
        let kind = self.lower_ident(it.next().expect("grammar: system kind"));
        let path = it.next().expect("grammar: schema path");
        let pspan = self.span(&path);
        let inner = kids(path).next().expect("grammar: path literal");
        let schema = if inner.as_rule() == Rule::quoted_ident {
            StrLit {
                value: kids(inner)
                    .next()
                    .map(|q| q.as_str())
                    .unwrap_or("")
                    .to_string(),
                span: pspan,
            }
        } else {
            self.lower_strlit(inner)
        };
        let company = it.next().map(|c| self.lower_company(c));
        SystemDecl {
            name,
            kind,
            schema,
            company,
            span,
        }
    }

    fn lower_company(&self, pair: P<'_>) -> CompanyScope {
        let span = self.span(&pair);
        let mut names = kids(pair)
            .filter(|p| p.as_rule() == Rule::ident)
            .map(|p| self.lower_ident(p));
        let column = names.next().expect("grammar: company column");
        CompanyScope {
            column,
            except: names.collect(),
            span,
        }
    }

    fn lower_settings(&mut self, pair: P<'_>) -> SettingsDecl {
        let span = self.span(&pair);
        let mut settings = Vec::new();
        let mut close = span;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::setting => settings.push(self.lower_assignment(p)),
                Rule::close_brace => close = self.span(&p),
                _ => {}
            }
        }
        SettingsDecl {
            settings,
            close,
            span,
        }
    }

    fn lower_strlit(&self, pair: P<'_>) -> StrLit {
        let span = self.span(&pair);
        let raw = kids(pair).next().map(|p| p.as_str()).unwrap_or("");
        StrLit {
            value: raw.replace("''", "'"),
            span,
        }
    }

    fn lower_arrow(&self, pair: P<'_>) -> Arrow {
        let dir = match pair.as_str() {
            "->" => Direction::Forward,
            "<-" => Direction::Backward,
            _ => Direction::Both,
        };
        Arrow {
            dir,
            span: self.span(&pair),
        }
    }

    fn lower_table_ref(&self, pair: P<'_>) -> TableRef {
        let span = self.span(&pair);
        let mut it = kids(pair);
        let system = self.lower_ident(it.next().expect("grammar: system"));
        let table = self.lower_ident(it.next().expect("grammar: table"));
        TableRef {
            system,
            table,
            span,
        }
    }

    fn lower_field_ref(&self, pair: P<'_>) -> FieldRef {
        let span = self.span(&pair);
        let mut it = kids(pair);
        let system = self.lower_ident(it.next().expect("grammar: system"));
        let table = self.lower_ident(it.next().expect("grammar: table"));
        let field = self.lower_ident(it.next().expect("grammar: field"));
        FieldRef {
            system,
            table,
            field,
            span,
        }
    }

    fn lower_mapping(&mut self, pair: P<'_>) -> MappingDecl {
        let span = self.span(&pair);
        let mut it = kids(pair).filter(|p| p.as_rule() != Rule::kw_mapping);
        let name = self.lower_ident(it.next().expect("grammar: mapping name"));
        let left = self.lower_table_ref(it.next().expect("grammar: left table"));
        let arrow = self.lower_arrow(it.next().expect("grammar: arrow"));
        let right = self.lower_table_ref(it.next().expect("grammar: right table"));
        let mut clauses = Vec::new();
        let mut close = span;
        for p in it {
            if p.as_rule() == Rule::close_brace {
                close = self.span(&p);
            } else if let Some(c) = self.lower_clause(p) {
                clauses.push(c);
            }
        }
        MappingDecl {
            name,
            left,
            arrow,
            right,
            clauses,
            close,
            span,
        }
    }

    fn lower_options(&mut self, pair: P<'_>) -> OptionsDecl {
        let span = self.span(&pair);
        let mut it = kids(pair).filter(|p| p.as_rule() != Rule::kw_options);
        let name = self.lower_ident(it.next().expect("grammar: options name"));
        let left = self.lower_field_ref(it.next().expect("grammar: left field"));
        let arrow = self.lower_arrow(it.next().expect("grammar: arrow"));
        let right = self.lower_field_ref(it.next().expect("grammar: right field"));
        let mut pairs = Vec::new();
        let mut close = None;
        let (mut create_missing, mut also, mut schedule) = (None, Vec::new(), None);
        for block in it {
            match block.as_rule() {
                Rule::create_missing => {
                    create_missing = Some(self.span(&block));
                    continue;
                }
                Rule::also_clause => {
                    let refs = kids(block).filter(|p| p.as_rule() == Rule::field_ref);
                    also.extend(refs.map(|p| self.lower_field_ref(p)).collect::<Vec<_>>());
                    continue;
                }
                Rule::schedule_clause => {
                    if let Some(Clause::Schedule(s)) = self.lower_clause(block) {
                        schedule = Some(Box::new(s));
                    }
                    continue;
                }
                _ => {}
            }
            for p in kids(block) {
                match p.as_rule() {
                    Rule::option_pair => {
                        let pspan = self.span(&p);
                        let mut strs = kids(p);
                        let code = self.lower_strlit(strs.next().expect("grammar: code"));
                        let label = self.lower_strlit(strs.next().expect("grammar: label"));
                        pairs.push(OptionPair {
                            code,
                            label,
                            span: pspan,
                        });
                    }
                    Rule::close_brace => close = Some(self.span(&p)),
                    _ => {}
                }
            }
        }
        OptionsDecl {
            name,
            left,
            arrow,
            right,
            create_missing,
            also,
            schedule,
            pairs,
            close,
            span,
        }
    }

    fn lower_clause(&mut self, pair: P<'_>) -> Option<Clause> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut it = kids(pair).filter(|p| !is_keyword(p.as_rule()));
        Some(match rule {
            Rule::where_clause => {
                let system = self.lower_ident(it.next()?);
                let expr = self.lower_expr(it.next()?);
                Clause::Where(WhereClause { system, expr, span })
            }
            Rule::couple_clause => self.lower_couple(it, span)?,
            Rule::after_clause => Clause::After(AfterClause {
                names: it.map(|p| self.lower_ident(p)).collect(),
                span,
            }),
            Rule::fields_block => self.lower_fields(it, span)?,
            Rule::couple_via => Clause::CoupleVia(CoupleVia {
                mapping: self.lower_ident(it.next()?),
                span,
            }),
            Rule::split_clause => self.lower_split(it, span)?,
            Rule::create_values => self.lower_create_values(it, span)?,
            Rule::policy_clause => self.lower_policy(it.next()?, it.next()?, span)?,
            Rule::schedule_clause => {
                let every = self.lower_duration(it.next()?);
                let idle = it.next().map(|p| self.lower_duration(p));
                Clause::Schedule(ScheduleClause { every, idle, span })
            }
            Rule::key_clause | Rule::watermark_clause => {
                let o = FieldOverride {
                    system: self.lower_ident(it.next()?),
                    field: self.lower_ident(it.next()?),
                    span,
                };
                if rule == Rule::key_clause {
                    Clause::Key(o)
                } else {
                    Clause::Watermark(o)
                }
            }
            Rule::blank_clause => Clause::Blank(BlankClause {
                target: self.lower_field_ref(it.next()?),
                span,
            }),
            Rule::enabled_clause => Clause::When(WhenClause {
                setting: self.lower_ident(it.next()?),
                span,
            }),
            _ => return None,
        })
    }

    /// `couple by a = b and ... [ignoring case]`.
    fn lower_couple<'i>(&mut self, it: impl Iterator<Item = P<'i>>, span: Span) -> Option<Clause> {
        let mut pairs = Vec::new();
        let mut ignore_case = false;
        for p in it {
            match p.as_rule() {
                Rule::couple_pair => {
                    let pspan = self.span(&p);
                    let mut sides = kids(p);
                    let left = self.lower_ident(sides.next()?);
                    let right = self.lower_ident(sides.next()?);
                    pairs.push(CouplePair {
                        left,
                        right,
                        span: pspan,
                    });
                }
                Rule::ignoring_case => ignore_case = true,
                _ => {}
            }
        }
        Some(Clause::Couple(CoupleClause {
            pairs,
            ignore_case,
            span,
        }))
    }

    /// A fields block, with its `when` condition.
    fn lower_fields<'i>(&mut self, it: impl Iterator<Item = P<'i>>, span: Span) -> Option<Clause> {
        let mut condition = None;
        let mut rest = Vec::new();
        for p in it {
            if p.as_rule() == Rule::fields_when {
                let cspan = self.span(&p);
                let mut parts = kids(p).filter(|q| !is_keyword(q.as_rule()));
                let system = self.lower_ident(parts.next()?);
                let expr = self.lower_expr(parts.next()?);
                condition = Some(FieldsWhen {
                    system,
                    expr,
                    span: cspan,
                });
            } else {
                rest.push(p);
            }
        }
        let mut block = self.lower_lines(rest, span);
        block.condition = condition;
        Some(Clause::Fields(block))
    }

    /// `split field every n into f [numbered g] { ... }`.
    fn lower_split<'i>(
        &mut self,
        mut it: impl Iterator<Item = P<'i>>,
        span: Span,
    ) -> Option<Clause> {
        let field = self.lower_ident(it.next()?);
        let every = self.lower_literal(it.next()?);
        let into = self.lower_ident(it.next()?);
        let mut numbered = None;
        let mut rest = Vec::new();
        for p in it {
            match p.as_rule() {
                Rule::ident => numbered = Some(self.lower_ident(p)),
                _ => rest.push(p),
            }
        }
        let body_start = rest.first().map(|p| self.span(p)).unwrap_or(span);
        let body = self.lower_lines(rest, body_start.to(span));
        Some(Clause::Split(SplitClause {
            field,
            every,
            into,
            numbered,
            body,
            span,
        }))
    }

    /// `on create system { assignments }`.
    fn lower_create_values<'i>(
        &mut self,
        mut it: impl Iterator<Item = P<'i>>,
        span: Span,
    ) -> Option<Clause> {
        let system = self.lower_ident(it.next()?);
        let mut values = Vec::new();
        let mut close = span;
        for p in it {
            match p.as_rule() {
                Rule::assignment => values.push(self.lower_assignment(p)),
                Rule::close_brace => close = self.span(&p),
                _ => {}
            }
        }
        Some(Clause::CreateValues(CreateValues {
            system,
            values,
            close,
            span,
        }))
    }

    fn lower_policy(&mut self, what: P<'_>, value: P<'_>, span: Span) -> Option<Clause> {
        const KINDS: [&str; 3] = ["missing", "conflict", "delete"];
        let what_span = self.span(&what);
        let value_span = self.span(&value);
        let words: Vec<P<'_>> = kids(value).collect();
        let first = words.first()?.as_str().to_string();
        let wins = words.len() > 1;
        let policy = match what.as_str() {
            "missing" => match (first.as_str(), wins) {
                ("create", false) => Some(Policy::Missing(MissingPolicy::Create)),
                ("skip", false) => Some(Policy::Missing(MissingPolicy::Skip)),
                _ => {
                    self.unknown_policy(value_span, "missing", &first, &["create", "skip"]);
                    None
                }
            },
            "conflict" => match (first.as_str(), wins) {
                ("log", false) => Some(Policy::Conflict(ConflictPolicy::Log)),
                (_, true) => Some(Policy::Conflict(ConflictPolicy::Wins(Ident {
                    name: first.clone(),
                    quoted: false,
                    span: self.span(&words[0]),
                }))),
                _ => {
                    self.unknown_policy(value_span, "conflict", &first, &["log", "<system> wins"]);
                    // Keep a policy in the tree so no "missing conflict policy" follows.
                    Some(Policy::Conflict(ConflictPolicy::Log))
                }
            },
            "delete" => match (first.as_str(), wins) {
                ("restore", false) => Some(Policy::Delete(DeletePolicy::Restore)),
                ("uncouple", false) => Some(Policy::Delete(DeletePolicy::Uncouple)),
                ("ignore", false) => Some(Policy::Delete(DeletePolicy::Ignore)),
                _ => {
                    self.unknown_policy(
                        value_span,
                        "delete",
                        &first,
                        &["restore", "uncouple", "ignore"],
                    );
                    None
                }
            },
            other => {
                self.diagnostics.push(
                    Diagnostic::new(
                        codes::UNKNOWN_POLICY,
                        what_span,
                        format!("unknown policy `on {other}`"),
                    )
                    .label("not a policy")
                    .help(
                        suggest::help_for(other, KINDS)
                            .map(|h| {
                                h.replace("`?", ":`?")
                                    .replace("did you mean `", "did you mean `on ")
                            })
                            .unwrap_or_else(|| {
                                "the policies are `on missing:`, `on conflict:` and `on delete:`"
                                    .into()
                            }),
                    ),
                );
                None
            }
        }?;
        Some(Clause::Policy(PolicyClause { policy, span }))
    }

    fn unknown_policy(&mut self, span: Span, what: &str, written: &str, choices: &[&str]) {
        let list = choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = suggest::help_for(written, choices.iter().copied())
            .unwrap_or_else(|| format!("`on {what}:` takes one of {list}"));
        self.diagnostics.push(
            Diagnostic::new(
                codes::UNKNOWN_POLICY,
                span,
                format!("unknown value `{written}` for `on {what}:`"),
            )
            .label(format!("expected one of {list}"))
            .help(help),
        );
    }

    fn lower_duration(&mut self, pair: P<'_>) -> DurationLit {
        let span = self.span(&pair);
        let raw = pair.as_str().to_string();
        let (num, unit) = raw.split_at(raw.len() - 1);
        let factor = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => 86400,
        };
        let seconds = num.parse::<u64>().ok().and_then(|n| n.checked_mul(factor));
        let seconds = match seconds {
            Some(0) | None => {
                self.diagnostics.push(
                    Diagnostic::new(
                        codes::INVALID_LITERAL,
                        span,
                        format!("invalid duration `{raw}`"),
                    )
                    .label("must be between 1s and 100000d")
                    .help("write a positive duration such as `30m`, `12h` or `1d`"),
                );
                60
            }
            Some(s) => s,
        };
        DurationLit { seconds, raw, span }
    }

    fn lower_assignment(&mut self, pair: P<'_>) -> Assignment {
        let span = self.span(&pair);
        let mut it = kids(pair);
        let field = self.lower_ident(it.next().expect("grammar: field"));
        let value = self.lower_literal(it.next().expect("grammar: value"));
        Assignment { field, value, span }
    }

    /// Field lines and the closing brace of a block.
    fn lower_lines(&mut self, pairs: Vec<P<'_>>, span: Span) -> FieldsBlock {
        let mut lines = Vec::new();
        let mut close = span;
        for p in pairs {
            match p.as_rule() {
                Rule::field_line => lines.push(self.lower_field_line(p)),
                Rule::close_brace => close = self.span(&p),
                _ => {}
            }
        }
        FieldsBlock {
            condition: None,
            lines,
            close,
            span,
        }
    }

    fn lower_field_line(&mut self, pair: P<'_>) -> FieldLine {
        let span = self.span(&pair);
        let mut it = kids(pair);
        let left = self.lower_operand(it.next().expect("grammar: left operand"));
        let arrow = self.lower_arrow(it.next().expect("grammar: arrow"));
        let right = self.lower_operand(it.next().expect("grammar: right operand"));
        let mut via = None;
        let mut through = None;
        let mut transforms = Vec::new();
        let mut modifiers = Vec::new();
        for p in it {
            match p.as_rule() {
                Rule::via => {
                    via = kids(p)
                        .find(|q| q.as_rule() == Rule::mapping_name)
                        .map(|q| self.lower_ident(q))
                }
                Rule::through => through = Some(self.lower_through(p)),
                Rule::transform => {
                    if let Some(call) = kids(p).next() {
                        transforms.push(self.lower_call(call));
                    }
                }
                Rule::modifiers => {
                    for m in kids(p) {
                        modifiers.push(self.lower_modifier(m));
                    }
                }
                _ => {}
            }
        }
        FieldLine {
            left,
            arrow,
            right,
            via,
            through,
            transforms,
            modifiers,
            span,
        }
    }

    fn lower_through(&mut self, pair: P<'_>) -> Through {
        let span = self.span(&pair);
        let mut it =
            kids(pair).filter(|p| !matches!(p.as_rule(), Rule::kw_through | Rule::kw_where));
        let table = self.lower_table_ref(it.next().expect("grammar: through table"));
        let from = self.lower_ident(it.next().expect("grammar: through from"));
        let to = self.lower_ident(it.next().expect("grammar: through to"));
        let filter = it.next().map(|e| self.lower_expr(e));
        Through {
            table,
            from,
            to,
            filter,
            span,
        }
    }

    fn lower_modifier(&mut self, pair: P<'_>) -> Modifier {
        let span = self.span(&pair);
        let words = kids(pair).map(|w| w.as_str()).collect::<Vec<_>>().join(" ");
        let kind = ModifierKind::ALL
            .iter()
            .find(|(s, _)| *s == words)
            .map(|(_, k)| *k);
        if kind.is_none() {
            let names = ModifierKind::ALL.iter().map(|(s, _)| *s);
            self.diagnostics.push(
                Diagnostic::new(
                    codes::UNKNOWN_MODIFIER,
                    span,
                    format!("unknown field modifier `{words}`"),
                )
                .label("not a modifier")
                .help(suggest::help_for(&words, names).unwrap_or_else(|| {
                    "the modifiers are `not null`, `clear on fail` and `deferred`".into()
                })),
            );
        }
        Modifier { kind, words, span }
    }

    fn lower_operand(&mut self, pair: P<'_>) -> Operand {
        let inner = kids(pair).next().expect("grammar: operand");
        match inner.as_rule() {
            Rule::literal => Operand::Const(self.lower_literal(inner)),
            _ => Operand::Field(self.lower_ident(inner)),
        }
    }

    fn lower_call(&mut self, pair: P<'_>) -> Call {
        let span = self.span(&pair);
        if pair.as_rule() == Rule::map_call {
            let mut name = None;
            let mut entries = Vec::new();
            for p in kids(pair) {
                match p.as_rule() {
                    Rule::kw_map => {
                        name = Some(Ident {
                            name: "map".into(),
                            quoted: false,
                            span: self.span(&p),
                        })
                    }
                    Rule::map_entry => {
                        let espan = self.span(&p);
                        let mut lits = kids(p);
                        let from = self.lower_literal(lits.next().expect("grammar: map key"));
                        let to = self.lower_literal(lits.next().expect("grammar: map value"));
                        entries.push(MapEntry {
                            from,
                            to,
                            span: espan,
                        });
                    }
                    _ => {}
                }
            }
            return Call {
                name: name.unwrap_or(Ident {
                    name: "map".into(),
                    quoted: false,
                    span,
                }),
                args: Vec::new(),
                map: Some(entries),
                span,
            };
        }
        let mut it = kids(pair);
        let name = self.lower_ident(it.next().expect("grammar: function name"));
        let args = it
            .next()
            .map(|a| kids(a).map(|l| self.lower_literal(l)).collect())
            .unwrap_or_default();
        Call {
            name,
            args,
            map: None,
            span,
        }
    }

    fn lower_literal(&mut self, pair: P<'_>) -> Literal {
        let span = self.span(&pair);
        let inner = kids(pair).next().expect("grammar: literal");
        let kind = match inner.as_rule() {
            Rule::string => {
                let raw = kids(inner).next().map(|p| p.as_str()).unwrap_or("");
                LitKind::Str(raw.replace("''", "'"))
            }
            Rule::number => {
                let raw = inner.as_str().to_string();
                match Decimal::from_str(&raw) {
                    Ok(v) => LitKind::Num(raw, v),
                    Err(_) => {
                        self.diagnostics.push(
                            Diagnostic::new(
                                codes::INVALID_LITERAL,
                                span,
                                format!("number `{raw}` is out of range"),
                            )
                            .label("too large or too precise")
                            .help("numbers have at most 28 significant digits"),
                        );
                        LitKind::Num(raw, Decimal::ZERO)
                    }
                }
            }
            Rule::kw_true => LitKind::Bool(true),
            Rule::kw_false => LitKind::Bool(false),
            _ => LitKind::Null,
        };
        Literal { kind, span }
    }

    fn lower_expr(&mut self, pair: P<'_>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::and_expr => {
                let is_or = pair.as_rule() == Rule::expr;
                let mut parts: Vec<Expr> = kids(pair)
                    .filter(|p| !is_keyword(p.as_rule()))
                    .map(|p| self.lower_expr(p))
                    .collect();
                if parts.len() == 1 {
                    parts.pop().expect("one part")
                } else if is_or {
                    Expr::Or(parts, span)
                } else {
                    Expr::And(parts, span)
                }
            }
            Rule::not_expr => {
                let all: Vec<P<'_>> = kids(pair).collect();
                let (nots, rest) = all.split_at(all.len() - 1);
                if nots.len() > super::guard::MAX_DEPTH {
                    // Nested `not`s nest the tree: bound them like parentheses.
                    let at = self.span(&nots[super::guard::MAX_DEPTH]);
                    self.diagnostics.push(
                        Diagnostic::new(
                            codes::TOO_DEEP,
                            at,
                            format!("more than {} `not` in a row", super::guard::MAX_DEPTH),
                        )
                        .label("too deep here")
                        .help("`not not x` is `x`: keep at most one `not`"),
                    );
                    return self.lower_expr(rest[0].clone());
                }
                let mut expr = self.lower_expr(rest[0].clone());
                for n in nots.iter().rev() {
                    let s = self.span(n).to(expr.span());
                    expr = Expr::Not(Box::new(expr), s);
                }
                expr
            }
            Rule::paren => {
                let inner = kids(pair).next().expect("grammar: paren expr");
                Expr::Paren(Box::new(self.lower_expr(inner)), span)
            }
            Rule::comparison => {
                let mut it = kids(pair);
                let field = self.lower_ident(it.next().expect("grammar: field"));
                let next = it.next().expect("grammar: comparison");
                if next.as_rule() == Rule::in_list {
                    let mut negated = false;
                    let mut values = Vec::new();
                    for p in kids(next) {
                        match p.as_rule() {
                            Rule::kw_not => negated = true,
                            Rule::literal => values.push(self.lower_literal(p)),
                            _ => {}
                        }
                    }
                    Expr::In(InList {
                        field,
                        negated,
                        values,
                        span,
                    })
                } else if next.as_rule() == Rule::in_set {
                    let mut negated = false;
                    let mut set = None;
                    for p in kids(next) {
                        match p.as_rule() {
                            Rule::kw_not => negated = true,
                            Rule::word => {
                                set = Some(Ident {
                                    name: p.as_str().to_string(),
                                    quoted: false,
                                    span: self.span(&p),
                                })
                            }
                            _ => {}
                        }
                    }
                    Expr::InSet(InSet {
                        field,
                        negated,
                        set: set.expect("grammar: value set name"),
                        span,
                    })
                } else {
                    let op_span = self.span(&next);
                    let op = match next.as_str() {
                        "==" => CmpOp::Eq,
                        "!=" => CmpOp::Ne,
                        "<=" => CmpOp::Le,
                        ">=" => CmpOp::Ge,
                        "<" => CmpOp::Lt,
                        _ => CmpOp::Gt,
                    };
                    let value = self.lower_literal(it.next().expect("grammar: value"));
                    Expr::Compare(Comparison {
                        field,
                        op,
                        op_span,
                        value,
                        span,
                    })
                }
            }
            _ => {
                // Unreachable by the grammar; keep going with a harmless node.
                Expr::Paren(Box::new(Expr::And(Vec::new(), span)), span)
            }
        }
    }
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_system
            | Rule::kw_settings
            | Rule::kw_mapping
            | Rule::kw_options
            | Rule::kw_where
            | Rule::kw_couple
            | Rule::kw_by
            | Rule::kw_ignoring
            | Rule::kw_case
            | Rule::kw_after
            | Rule::kw_fields
            | Rule::kw_on
            | Rule::kw_create
            | Rule::kw_schedule
            | Rule::kw_every
            | Rule::kw_idle
            | Rule::kw_key
            | Rule::kw_watermark
            | Rule::kw_when
            | Rule::kw_wins
            | Rule::kw_split
            | Rule::kw_into
            | Rule::kw_numbered
            | Rule::kw_missing
            | Rule::kw_also
            | Rule::kw_via
            | Rule::kw_and
            | Rule::kw_or
            | Rule::kw_is
            | Rule::kw_blank
            | Rule::kw_through
    )
}
