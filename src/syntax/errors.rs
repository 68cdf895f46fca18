//! Turns a pest error into a diagnostic that says, in words, what was expected.

use super::parser::Rule;
use crate::diagnostic::{codes, Diagnostic};
use crate::source::{FileId, Span};
use pest::error::{ErrorVariant, InputLocation};

/// What a rule looks like to a user, or None when it should not be listed.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::kw_system | Rule::kw_settings | Rule::kw_mapping | Rule::kw_options => {
            "`system`, `mapping`, `options` or `settings`"
        }
        Rule::system_decl | Rule::settings_decl | Rule::mapping_decl | Rule::options_decl => {
            "`system`, `mapping`, `options` or `settings`"
        }
        Rule::kw_where
        | Rule::kw_couple
        | Rule::kw_after
        | Rule::kw_fields
        | Rule::kw_on
        | Rule::kw_schedule
        | Rule::kw_key
        | Rule::kw_watermark
        | Rule::kw_when
        | Rule::where_clause
        | Rule::couple_clause
        | Rule::after_clause
        | Rule::fields_block
        | Rule::create_values
        | Rule::policy_clause
        | Rule::schedule_clause
        | Rule::key_clause
        | Rule::watermark_clause
        | Rule::couple_via
        | Rule::split_clause
        | Rule::kw_split
        | Rule::enabled_clause => "a clause (`where`, `couple by`, `after`, `on`, `fields`, ...)",
        Rule::close_brace => "`}`",
        Rule::ident | Rule::bare_ident | Rule::quoted_ident | Rule::word => "a name",
        Rule::mapping_name | Rule::dashed_ident => "a mapping name",
        Rule::table_ref => "`system.table`",
        Rule::field_ref => "`system.table.field`",
        Rule::arrow => "an arrow (`->`, `<-` or `<->`)",
        Rule::string | Rule::str_inner => "a 'string'",
        Rule::path_lit => "a \"path\"",
        Rule::literal | Rule::number | Rule::kw_true | Rule::kw_false | Rule::kw_null => "a value",
        Rule::duration => "a duration such as `30m`",
        Rule::field_line | Rule::operand => "a field line (`Name <-> name`)",
        Rule::cmp_op | Rule::in_list | Rule::kw_in | Rule::in_set | Rule::kw_is => {
            "a comparison (`==`, `!=`, `<`, `in (...)`, ...)"
        }
        Rule::kw_and | Rule::kw_or => "`and`, `or`",
        Rule::expr | Rule::and_expr | Rule::not_expr | Rule::paren | Rule::comparison => {
            "a condition (`field == value`)"
        }
        Rule::via | Rule::kw_via => "`via`",
        Rule::transform => "`|`",
        Rule::modifiers => "`[`",
        Rule::modifier => "a modifier (`not null`, `clear on fail`, `deferred`, `parent`)",
        Rule::call | Rule::map_call | Rule::kw_map => "a function",
        Rule::call_args => "`(`",
        Rule::map_entry => "`'value' => 'value'`",
        Rule::option_pair => "`'CODE' = 'Label'`",
        Rule::option_pairs => "`{`",
        Rule::couple_pair => "`field == field`",
        Rule::ignoring_case => "`ignoring case`",
        Rule::assignment | Rule::setting => "`field = value`",
        Rule::policy_value => "a policy value",
        Rule::kw_by => "`by`",
        Rule::kw_every => "`every`",
        Rule::kw_idle => "`idle`",
        Rule::kw_create => "`create`",
        Rule::kw_case => "`case`",
        Rule::kw_wins => "`wins`",
        Rule::kw_into => "`into`",
        Rule::kw_numbered => "`numbered`",
        Rule::kw_missing => "`missing`",
        Rule::create_missing => "`create missing`",
        Rule::also_clause | Rule::kw_also => "`also`",
        Rule::fields_when => "`when`",
        Rule::kw_ignoring => "`ignoring`",
        Rule::kw_not => "`not`",
        _ => return None,
    })
}

/// The token at `pos`, for "found ..." labels.
fn found_at(text: &str, pos: usize) -> String {
    let rest = &text[pos..];
    match rest.chars().next() {
        None => "end of file".into(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            format!("`{word}`")
        }
        Some('\n') | Some('\r') => "end of line".into(),
        Some(_) => {
            let tok: String = rest
                .chars()
                .take_while(|c| "-<>=!|{}()[],:.'\"".contains(*c))
                .take(3)
                .collect();
            let tok = if tok.is_empty() {
                rest.chars().next().map(String::from).unwrap_or_default()
            } else {
                tok
            };
            format!("`{tok}`")
        }
    }
}

/// An unterminated quote on the line before `pos`, if any: the usual cause of a confusing error.
fn unterminated_quote(text: &str, pos: usize) -> Option<usize> {
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[pos..]
        .find('\n')
        .map(|i| pos + i)
        .unwrap_or(text.len());
    let line = &text[line_start..line_end];
    let mut open: Option<(char, usize)> = None;
    for (i, c) in line.char_indices() {
        match (open, c) {
            (None, '#') => break,
            (None, '\'' | '"') => open = Some((c, i)),
            (Some((q, _)), c) if c == q => open = None,
            _ => {}
        }
    }
    open.map(|(_, i)| line_start + i)
}

pub fn syntax_error(file: FileId, text: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    if let Some(q) = unterminated_quote(text, pos) {
        return Diagnostic::new(
            codes::SYNTAX,
            Span::new(file, q, q + 1),
            "unterminated quote",
        )
        .label("this quote is never closed on its line")
        .help("close the quote; inside 'strings' write a quote as ''");
    }
    let mut expected: Vec<&str> = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|r| describe(*r)).collect()
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    expected.retain(|e| seen.insert(*e));
    let found = found_at(text, pos);
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    let end = (pos + text[pos..].chars().next().map(char::len_utf8).unwrap_or(0)).min(text.len());
    let mut d =
        Diagnostic::new(codes::SYNTAX, Span::new(file, pos, end), message).label("unexpected here");
    if found == "`=`" && expected.iter().any(|e| e.contains("arrow")) {
        d = d.help("field lines use arrows: `->` (to the right), `<-` (to the left) or `<->`");
    } else if found == "`=`" && expected.iter().any(|e| e.contains("comparison")) {
        d = d.help("compare with `==`");
    }
    d
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}
