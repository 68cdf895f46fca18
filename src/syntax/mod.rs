//! Syntax: the pest grammar, lowering into the AST, and the canonical printer.

pub mod ast;
mod errors;
pub mod guard;
mod lower;
mod parser;
pub mod printer;

use crate::diagnostic::Diagnostic;
use crate::source::FileId;
use pest::Parser;

/// Parses one file. Returns the AST when the text parsed, and every diagnostic found on the way.
pub fn parse_file(file: FileId, text: &str) -> (Option<ast::File>, Vec<Diagnostic>) {
    if let Err(d) = guard::check_depth(file, text) {
        return (None, vec![*d]);
    }
    match parser::CouplerParser::parse(parser::Rule::file, text) {
        Ok(mut pairs) => {
            let mut lowerer = lower::Lowerer::new(file, text);
            let pair = pairs.next().expect("grammar: file rule");
            let ast = lowerer.lower_file(pair);
            (Some(ast), lowerer.diagnostics)
        }
        Err(e) => (None, vec![errors::syntax_error(file, text, e)]),
    }
}

/// Formats a file and proves the result means the same: it parses, has the same tree (up to
/// clause order and quoting) and the same comments, and formats to itself.
pub fn format_checked(file: FileId, ast: &ast::File, text: &str) -> Result<String, String> {
    let out = printer::print_file(ast, text);
    let (again, diags) = parse_file(file, &out);
    let again = again.ok_or_else(|| {
        format!(
            "the formatted text does not parse ({})",
            diags.first().map(|d| d.message.as_str()).unwrap_or("")
        )
    })?;
    if fingerprint(ast) != fingerprint(&again) {
        return Err("the formatted text means something else".into());
    }
    let comments = |f: &ast::File| {
        f.comments
            .iter()
            .map(|c| c.text.trim_end().to_string())
            .collect::<Vec<_>>()
    };
    let (mut before, mut after) = (comments(ast), comments(&again));
    before.sort();
    after.sort();
    if before != after {
        return Err("comments were lost".into());
    }
    if printer::print_file(&again, &out) != out {
        return Err("formatting is not stable".into());
    }
    Ok(out)
}

/// The tree without spans, quoting and clause order: what a file means.
pub fn fingerprint(file: &ast::File) -> String {
    let mut items = file.items.clone();
    for item in &mut items {
        if let ast::Item::Mapping(m) = item {
            m.clauses.sort_by_key(|c| c.rank());
        }
    }
    let text = format!("{items:?}");
    let spans = regex::Regex::new(r"@\d+\.\.\d+|quoted: (true|false)").expect("valid regex");
    spans.replace_all(&text, "").into_owned()
}
