//! Rendering: miette for people, one JSON object per line for editors and CI.

use super::{Diagnostic, Severity};
use crate::source::{SourceMap, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use std::fmt;

#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    pub color: bool,
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: false,
            width: 100,
        }
    }
}

/// A diagnostic as miette sees it: labels in its own file; labels elsewhere become notes.
struct MietteView {
    message: String,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl fmt::Debug for MietteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for MietteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MietteView {}

impl miette::Diagnostic for MietteView {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }
}

fn labeled(span: Span, text: &str, primary: bool) -> LabeledSpan {
    let label = (!text.is_empty()).then(|| text.to_string());
    if primary {
        LabeledSpan::new_primary_with_span(label, (span.start as usize, span.len()))
    } else {
        LabeledSpan::new_with_span(label, (span.start as usize, span.len()))
    }
}

/// Renders one diagnostic as text, `error[E0301]: message` followed by the annotated source.
pub fn render_human(d: &Diagnostic, sources: &SourceMap, opts: RenderOptions) -> String {
    let file = sources.file(d.span.file);
    let mut labels = vec![labeled(d.span, &d.label, true)];
    let mut notes = Vec::new();
    for l in &d.secondary {
        if l.span.file == d.span.file {
            labels.push(labeled(l.span, &l.message, false));
        } else {
            notes.push(format!("{}: {}", sources.location(l.span), l.message));
        }
    }
    notes.extend(d.notes.iter().cloned());
    let view = MietteView {
        message: d.message.clone(),
        source: NamedSource::new(file.name.clone(), file.text.to_string()),
        labels,
        help: d.help.clone(),
    };
    let sev = match d.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut theme = if opts.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // miette prints its own severity glyph before the message; make it read like a compiler.
    let head = format!("{sev}[{}]:", d.code.id);
    theme.characters.error = head.clone();
    theme.characters.warning = head.clone();
    theme.characters.advice = head;
    let mut handler = GraphicalReportHandler::new_themed(theme)
        .with_width(opts.width)
        .with_context_lines(1);
    if !notes.is_empty() {
        let footer: Vec<String> = notes.iter().map(|n| format!("note: {n}")).collect();
        handler = handler.with_footer(footer.join("\n"));
    }
    let mut out = String::new();
    if handler.render_report(&mut out, &view).is_err() {
        out = format!("{sev}[{}]: {}\n", d.code.id, d.message);
    }
    let trimmed: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut text = trimmed.join("\n");
    // miette indents the header by two spaces; compilers do not.
    if let Some(rest) = text.strip_prefix("  ") {
        text = rest.to_string();
    }
    text.push('\n');
    text
}

#[derive(serde::Serialize)]
struct JsonLabel {
    message: String,
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
}

#[derive(serde::Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    code: &'a str,
    message: &'a str,
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    labels: Vec<JsonLabel>,
    help: Option<String>,
    notes: &'a [String],
}

fn json_label(span: Span, message: &str, sources: &SourceMap) -> JsonLabel {
    let file = sources.file(span.file);
    let start = file.line_col(span.start as usize);
    let end = file.line_col(span.end as usize);
    JsonLabel {
        message: message.to_string(),
        file: file.name.clone(),
        line: start.line,
        column: start.column,
        end_line: end.line,
        end_column: end.column,
    }
}

/// One JSON object (no trailing newline).
pub fn render_json(d: &Diagnostic, sources: &SourceMap) -> String {
    let primary = json_label(d.span, &d.label, sources);
    let mut labels = vec![json_label(d.span, &d.label, sources)];
    labels.extend(
        d.secondary
            .iter()
            .map(|l| json_label(l.span, &l.message, sources)),
    );
    let json = JsonDiagnostic {
        severity: d.severity(),
        code: d.code.id,
        message: &d.message,
        file: primary.file,
        line: primary.line,
        column: primary.column,
        end_line: primary.end_line,
        end_column: primary.end_column,
        labels,
        help: d.help.clone(),
        notes: &d.notes,
    };
    serde_json::to_string(&json).unwrap_or_else(|_| "{}".into())
}
