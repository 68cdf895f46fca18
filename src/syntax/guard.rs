//! Checks on raw input before the parser sees it: size, encoding, binary content, nesting.
//! They keep pathological files from reaching a recursive parser.

use crate::diagnostic::{codes, Diagnostic};
use crate::source::{FileId, Span};

/// Larger files are refused: a mapping set of 2,000 mappings is about 2 MB.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Parentheses may nest this deep in a filter.
pub const MAX_DEPTH: usize = 32;

/// Decodes bytes as UTF-8, or reports where decoding failed.
pub fn decode(file: FileId, bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Box::new(
            Diagnostic::new(
                codes::TOO_LARGE,
                Span::new(file, 0, 0),
                format!(
                    "file is {:.1} MiB, more than the {} MiB a mapping file may have",
                    bytes.len() as f64 / 1048576.0,
                    MAX_FILE_BYTES / 1048576
                ),
            )
            .label("the file starts here")
            .help("split the mapping set into several files"),
        ));
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(Box::new(
            Diagnostic::new(
                codes::BINARY_FILE,
                Span::new(
                    file,
                    valid_prefix(&bytes[..pos]),
                    valid_prefix(&bytes[..pos]),
                ),
                "file contains a NUL byte: it is binary, not a mapping file",
            )
            .label("NUL byte here")
            .help("mapping files are UTF-8 text; check that the path names a `.map` file"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Box::new(
            Diagnostic::new(
                codes::INVALID_UTF8,
                Span::new(file, at, at),
                format!("file is not valid UTF-8 (invalid byte at offset {at})"),
            )
            .label("invalid byte here")
            .help("save the file as UTF-8"),
        )
    })
}

fn valid_prefix(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    }
}

/// Finds the first parenthesis nested deeper than [`MAX_DEPTH`], outside strings and comments.
pub fn check_depth(file: FileId, text: &str) -> Result<(), Box<Diagnostic>> {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' | '"' => {
                for (_, d) in chars.by_ref() {
                    if d == c || d == '\n' {
                        break;
                    }
                }
            }
            '(' | '{' | '[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Box::new(
                        Diagnostic::new(
                            codes::TOO_DEEP,
                            Span::new(file, i, i + 1),
                            format!("nesting deeper than {MAX_DEPTH} levels"),
                        )
                        .label("too deep here")
                        .help("flatten the expression: `a and (b and c)` is `a and b and c`"),
                    ));
                }
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
