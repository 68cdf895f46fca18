//! What stops a mapping, and why a record fails. A mapping stops on the state store, on an
//! endpoint that fails as a whole, or on a plan that does not fit the endpoints; a record fails
//! on its own values, lookups or write. The kind, not the message, decides what happens next.

use crate::runtime::connector::ConnectorError;
use crate::runtime::state::{FailureKind, StateError};
use crate::runtime::values::ValueError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error("the profile binds no endpoint to system `{0}`")]
    UnboundSystem(String),
    /// A `system.table` side the catalog does not know.
    #[error("no table `{0}` in the schema catalog")]
    UnknownTable(String),
    #[error("no mapping `{0}`")]
    UnknownMapping(String),
    #[error("`{field}` is not a field of `{table}`")]
    UnknownField { field: String, table: String },
    #[error("no option field `{0}`")]
    UnknownOptionField(String),
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A field line's value that does not fit its target field.
    #[error("{from} -> {to}: {source}")]
    FieldValue {
        from: String,
        to: String,
        source: ValueError,
    },
    /// A transform that refused its value (transforms report their reason as text).
    #[error("`{function}` on `{field}`: {message}")]
    Transform {
        function: String,
        field: String,
        message: String,
    },
    /// A lookup whose reference is not coupled in its mapping.
    #[error(
        "`{field}` = `{reference}` has no coupled record in `{via}`; synchronize or couple it in `{via}` first, or mark the line `[clear on fail]`"
    )]
    NotCoupled {
        field: String,
        reference: String,
        via: String,
    },
    /// A blank reference through a mapping with `blank is S.T.F`, where that record is unknown.
    #[error("`{field}` is blank, which `{via}` says is the record `{blank}` names: {why}")]
    BlankUnknown {
        field: String,
        via: String,
        blank: String,
        why: String,
    },
    /// `through`: the value has no row (or several rows) to exchange it, or the table could not
    /// be read.
    #[error("`{field}` = `{value}` goes {through}: {why}")]
    ThroughFailed {
        field: String,
        value: String,
        through: String,
        why: String,
    },
    /// A `[parent]` lookup whose parent is not coupled yet: the record waits.
    #[error("waits for its parent: `{field}` = `{reference}` is not coupled in `{via}` yet")]
    AwaitsParent {
        field: String,
        reference: String,
        via: String,
    },
    #[error("`{field}` of the main record is {value}, so its extra records cannot be numbered")]
    Unnumbered {
        field: String,
        value: serde_json::Value,
    },
    /// The extra records of a split source record.
    #[error("extra records of `{field}`: {source}")]
    Parts {
        field: String,
        source: Box<EngineError>,
    },
    /// An extra record's write.
    #[error("extra record {part} of `{field}`: {source}")]
    Part {
        part: u32,
        field: String,
        source: Box<EngineError>,
    },
    /// Several uncoupled target records match one source record.
    #[error("{count} records of `{table}` match by {by}; couple it by hand with `coupler couple`")]
    Ambiguous {
        count: usize,
        table: String,
        by: String,
    },
    /// A deferred lookup's patch.
    #[error("deferred lookup: {0}")]
    Deferred(Box<EngineError>),
    /// A batch answer without a result for this record.
    #[error("no result for the write")]
    NoResult,
    /// A create whose answer was never heard, and it cannot be told which record, if any, it
    /// made.
    #[error(
        "a create of this record may already have been made ({why}); it is not created again until its record is coupled by hand (`coupler couple`), or, if there is none, the pending create is looked for again next run"
    )]
    CreateInDoubt { why: String },
}

impl EngineError {
    /// Whether the write that failed with this error may have been carried out all the same
    /// (no answer, a garbled one, a server error): a create failed so is looked for before it
    /// is made again. A refusal (4xx, a configuration, credentials) made nothing.
    pub fn may_have_written(&self) -> bool {
        match self {
            EngineError::Connector(e) => e.is_transient(),
            EngineError::NoResult => true,
            _ => false,
        }
    }

    /// How a record that failed with this error is recorded.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            EngineError::Connector(e) => e.kind.into(),
            EngineError::State(_) => FailureKind::Unknown,
            EngineError::UnboundSystem(_)
            | EngineError::UnknownTable(_)
            | EngineError::UnknownMapping(_)
            | EngineError::UnknownField { .. }
            | EngineError::UnknownOptionField(_) => FailureKind::Configuration,
            EngineError::Value(_)
            | EngineError::FieldValue { .. }
            | EngineError::Transform { .. }
            | EngineError::Unnumbered { .. } => FailureKind::Value,
            EngineError::NotCoupled { .. }
            | EngineError::AwaitsParent { .. }
            | EngineError::BlankUnknown { .. }
            | EngineError::ThroughFailed { .. } => FailureKind::Lookup,
            EngineError::Parts { source, .. }
            | EngineError::Part { source, .. }
            | EngineError::Deferred(source) => source.failure_kind(),
            EngineError::Ambiguous { .. } | EngineError::CreateInDoubt { .. } => {
                FailureKind::Ambiguous
            }
            EngineError::NoResult => FailureKind::NoResult,
        }
    }
}

/// `Result` of the engine.
pub type Res<T> = Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::connector::ErrorKind;

    #[test]
    fn a_record_failure_keeps_the_kind_of_its_cause() {
        let gone = EngineError::Connector(ConnectorError::of(ErrorKind::Gone, "404"));
        assert_eq!(gone.failure_kind(), FailureKind::Gone);
        let part = EngineError::Part {
            part: 2,
            field: "Description".into(),
            source: Box::new(gone),
        };
        assert_eq!(part.failure_kind(), FailureKind::Gone);
        assert_eq!(part.to_string(), "extra record 2 of `Description`: 404");
        assert_eq!(EngineError::NoResult.failure_kind(), FailureKind::NoResult);
        let lookup = EngineError::NotCoupled {
            field: "owner".into(),
            reference: "JR".into(),
            via: "salespeople".into(),
        };
        assert_eq!(lookup.failure_kind(), FailureKind::Lookup);
    }
}
