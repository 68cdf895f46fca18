//! Field transforms: the functions of a mapping pipeline (`| trim | truncate(30)`),
//! typed for the checker (`Function::output`) and applied by the runtime (`Function::apply`).

mod value;
pub use value::{decimal_of, json_decimal, Ty, Value};

mod args;
mod dates;
mod literal;
mod text;

mod alphanumeric;
mod clamp;
mod default;
mod extract_date;
mod format_date;
mod format_decimal;
mod lower;
mod map;
mod multiply;
mod regex_match;
mod regex_replace;
mod replace;
mod round;
mod substring;
mod title;
mod trim;
mod truncate;
mod unix_timestamp;
mod upper;

#[cfg(test)]
mod tests;

use std::fmt;

/// A literal argument as written in the mapping file.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A quoted string, e.g. `'da-DK'`.
    Str(String),
    /// A number, e.g. `30` or `2.5`.
    Num(rust_decimal::Decimal),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A value map, e.g. `{ 'A' => 'B', 'C' => 'D' }`.
    Map(Vec<(Arg, Arg)>),
}

impl fmt::Display for Arg {
    /// Renders the argument as it would be written in a mapping file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Arg::Num(n) => write!(f, "{n}"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Null => f.write_str("null"),
            Arg::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{k} => {v}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// An argument problem found when compiling a call; `arg` is the 0-based index of the argument at fault (None = the call as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError {
    /// The 0-based index of the faulty argument, or None for the call as a whole (e.g. wrong count).
    pub arg: Option<usize>,
    /// What is wrong (lowercase, no final period).
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// The input type is not accepted by the function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeError {
    /// What is wrong (lowercase, no final period).
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgError {}
impl std::error::Error for TypeError {}

/// A compiled transform call, ready to type and apply.
pub trait Function: fmt::Debug + Send + Sync {
    /// The function's name, e.g. `truncate`.
    fn name(&self) -> &'static str;
    /// Output type for an input type, or why the input is not accepted. Must be consistent with apply().
    fn output(&self, input: &Ty) -> Result<Ty, TypeError>;
    /// Apply to one value. Err(message) makes the record fail with that message.
    fn apply(&self, value: Value) -> Result<Value, String>;
}

/// Static description of a function, for docs, `coupler explain`, did-you-mean and error help.
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    /// The name as written in mapping files.
    pub name: &'static str,
    /// The parameter list, e.g. `(start, len)`, or empty.
    pub params: &'static str,
    /// The input types accepted, e.g. `text`.
    pub accepts: &'static str,
    /// The output type.
    pub returns: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Worked examples (also run as tests).
    pub examples: &'static [Example],
}

/// A worked example: a call applied to a JSON input gives a JSON output.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// The call as written in a mapping file, e.g. `truncate(3)`.
    pub call: &'static str,
    /// The input value as JSON.
    pub input: &'static str,
    /// The output value as JSON.
    pub output: &'static str,
}

/// Why a call could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// No function has this name.
    Unknown,
    /// The arguments are wrong.
    Arg(ArgError),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Unknown => f.write_str("unknown function"),
            CompileError::Arg(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CompileError {}

type Compiler = fn(&[Arg]) -> Result<Box<dyn Function>, ArgError>;

static SIGNATURES: [Signature; 19] = [
    upper::SIGNATURE,
    lower::SIGNATURE,
    title::SIGNATURE,
    trim::SIGNATURE,
    substring::SIGNATURE,
    truncate::SIGNATURE,
    replace::SIGNATURE,
    regex_replace::SIGNATURE,
    regex_match::SIGNATURE,
    alphanumeric::SIGNATURE,
    round::SIGNATURE,
    clamp::SIGNATURE,
    multiply::SIGNATURE,
    format_date::SIGNATURE,
    format_decimal::SIGNATURE,
    extract_date::SIGNATURE,
    unix_timestamp::SIGNATURE,
    default::SIGNATURE,
    map::SIGNATURE,
];

/// Same order as SIGNATURES.
static COMPILERS: [Compiler; 19] = [
    upper::compile,
    lower::compile,
    title::compile,
    trim::compile,
    substring::compile,
    truncate::compile,
    replace::compile,
    regex_replace::compile,
    regex_match::compile,
    alphanumeric::compile,
    round::compile,
    clamp::compile,
    multiply::compile,
    format_date::compile,
    format_decimal::compile,
    extract_date::compile,
    unix_timestamp::compile,
    default::compile,
    map::compile,
];

/// All function signatures, in a stable order.
pub fn signatures() -> &'static [Signature] {
    &SIGNATURES
}

/// The signature of the function with this name.
pub fn signature(name: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == name)
}

/// Compile a call: validates argument count, kinds and values (e.g. a regex that does not compile, a negative length, an unknown culture).
pub fn compile(name: &str, args: &[Arg]) -> Result<Box<dyn Function>, CompileError> {
    let i = SIGNATURES
        .iter()
        .position(|s| s.name == name)
        .ok_or(CompileError::Unknown)?;
    COMPILERS[i](args).map_err(CompileError::Arg)
}
