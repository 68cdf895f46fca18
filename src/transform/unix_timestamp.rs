//! `unix_timestamp`: seconds since 1970-01-01T00:00:00Z (Business Central: Unixtimestamp).

use super::dates::{self, When};
use super::{args, Arg, ArgError, Example, Function, Signature, Ty, TypeError, Value};

/// Signature of `unix_timestamp`.
pub(super) const SIGNATURE: Signature = Signature {
    name: "unix_timestamp",
    params: "",
    accepts: "date, datetime or ISO 8601 text",
    returns: "integer",
    summary: "Converts a date (taken as midnight UTC) or datetime to whole seconds since 1970-01-01T00:00:00Z (Business Central: Unixtimestamp)",
    examples: &[
        Example {
            call: "unix_timestamp",
            input: r#""1970-01-02""#,
            output: "86400",
        },
        Example {
            call: "unix_timestamp",
            input: r#""2024-03-05T13:00:00+01:00""#,
            output: "1709640000",
        },
    ],
};

/// Compiles `unix_timestamp`.
pub(super) fn compile(args: &[Arg]) -> Result<Box<dyn Function>, ArgError> {
    args::count(&SIGNATURE, args, 0)?;
    Ok(Box::new(UnixTimestamp))
}

#[derive(Debug)]
struct UnixTimestamp;

impl Function for UnixTimestamp {
    fn name(&self) -> &'static str {
        SIGNATURE.name
    }

    fn output(&self, input: &Ty) -> Result<Ty, TypeError> {
        dates::check(SIGNATURE.name, input)?;
        Ok(Ty::Integer)
    }

    fn apply(&self, value: Value) -> Result<Value, String> {
        Ok(match dates::read(SIGNATURE.name, &value)? {
            None => Value::Null,
            Some(when) => Value::Int(When::naive(when).and_utc().timestamp()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{code, run, ty};
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        assert_eq!(ty("unix_timestamp", Ty::DateTime), Ok(Ty::Integer));
        assert_eq!(ty("unix_timestamp", code(20)), Ok(Ty::Integer));
        let err = ty("unix_timestamp", Ty::Option).unwrap_err();
        assert_eq!(
            err.message,
            "`unix_timestamp` takes a date, datetime or text, not option"
        );
    }

    #[test]
    fn before_epoch() {
        assert_eq!(
            run("unix_timestamp", json!("1969-12-31T23:59:59Z")),
            Ok(json!(-1))
        );
    }
}
