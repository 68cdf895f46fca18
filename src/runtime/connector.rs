//! The connector trait: what the engine needs from an endpoint, whatever it is (embedded SQLite,
//! Dataverse Web API, Business Central API). Reads stream in pages, so memory is bounded by the
//! page size, not the table size.

use crate::plan::filter::Pred;
use async_trait::async_trait;
use serde_json::{Map, Value};

/// One record as the engine sees it: field values by catalog name, in canonical form
/// (option fields by label, booleans as booleans, GUIDs lower-case).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub modified_on: String,
    pub modified_by: Option<String>,
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            modified_on: self.modified_on.clone(),
            id: self.id.clone(),
        }
    }

    pub fn get(&self, field: &str) -> &Value {
        self.fields.get(field).unwrap_or(&Value::Null)
    }
}

/// A position in the change stream: records are ordered by (modified_on, id), so records that
/// share a modified-on value are never skipped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub modified_on: String,
    pub id: String,
}

/// Which changes to read.
#[derive(Debug, Clone)]
pub struct ChangeQuery<'a> {
    pub table: &'a str,
    /// Pushed down to the endpoint.
    pub filter: Option<&'a Pred>,
    /// Read strictly after this position; None reads everything.
    pub since: Option<&'a Cursor>,
    /// Loop prevention: leave out records last changed by this user.
    pub exclude_modified_by: Option<&'a str>,
    pub page_size: usize,
    /// Only these fields (`$select`); None reads every field.
    pub fields: Option<&'a [String]>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<Record>,
    /// Where the next page starts; None when this was the last.
    pub next: Option<Cursor>,
    /// Where the change stream stands after this page, when that is not its last record's
    /// position (pages read through their documents stand at the last document's).
    pub position: Option<Cursor>,
}

/// A record deleted on the endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Tombstone {
    pub id: String,
    pub deleted_on: String,
    pub deleted_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create with a key chosen by coupler, so a create that is retried after a crash is found
    /// again instead of duplicated.
    Create {
        id: String,
        fields: Map<String, Value>,
    },
    Update {
        id: String,
        fields: Map<String, Value>,
    },
    Delete {
        id: String,
    },
}

impl WriteOp {
    pub fn id(&self) -> &str {
        match self {
            WriteOp::Create { id, .. } | WriteOp::Update { id, .. } | WriteOp::Delete { id } => id,
        }
    }
}

/// What kind of failure an endpoint reported: the kind, not the message, decides whether the
/// engine retries, fails the record or stops the mapping, and how the failure is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Throttling, a timeout, a lost connection, a 5xx: worth trying again later.
    Transient,
    /// The endpoint refused the request as sent (a 4xx other than the ones below, a bad value).
    Rejected,
    /// The record is not there (deleted meanwhile, or never created).
    Gone,
    /// The record changed since it was read (a failed `If-Match`).
    Conflict,
    /// The catalog, the profile or the mapping asks for something this endpoint cannot do.
    Configuration,
    /// The credentials were refused.
    Authentication,
}

impl ErrorKind {
    /// The kind an HTTP status says: 501/505 configuration, 408, 429 and other 5xx
    /// transient, 401/403 authentication, 404
    /// gone, 409/412 conflict, any other status rejected.
    pub fn of_status(status: u16) -> ErrorKind {
        match status {
            // No retry makes a server implement a method or an HTTP version.
            501 | 505 => ErrorKind::Configuration,
            408 | 429 | 500..=599 => ErrorKind::Transient,
            401 | 403 => ErrorKind::Authentication,
            404 | 410 => ErrorKind::Gone,
            409 | 412 => ErrorKind::Conflict,
            _ => ErrorKind::Rejected,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Gone => "gone",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Authentication => "authentication",
        }
    }
}

/// An endpoint failure, of a whole request or of one record in a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ConnectorError {
    pub fn of(kind: ErrorKind, message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            kind,
            message: message.into(),
        }
    }

    /// A refusal (the kind of most failures); callers that know better use [`ConnectorError::of`].
    pub fn new(message: impl Into<String>) -> ConnectorError {
        ConnectorError::of(ErrorKind::Rejected, message)
    }

    pub fn configuration(message: impl Into<String>) -> ConnectorError {
        ConnectorError::of(ErrorKind::Configuration, message)
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

/// What a connector call gives back.
pub type Res<T> = Result<T, ConnectorError>;

/// One result per write operation, in order: the record as written, or why it failed.
pub type WriteResult = Result<Record, ConnectorError>;

#[async_trait]
pub trait Connector: Send + Sync {
    /// The user the integration writes as (for loop prevention).
    fn integration_user(&self) -> &str;

    /// One page of records changed since a position, filtered, in (modified_on, id) order.
    async fn read_changes(
        &self,
        query: &ChangeQuery<'_>,
        after: Option<&Cursor>,
    ) -> Result<Page, ConnectorError>;

    /// Records by id; missing ids are simply absent from the result.
    async fn read_by_ids(&self, table: &str, ids: &[String])
        -> Result<Vec<Record>, ConnectorError>;

    /// Records whose fields equal the given values (match-based coupling).
    async fn find(
        &self,
        table: &str,
        equals: &[(String, Value)],
        ignore_case: bool,
        filter: Option<&Pred>,
    ) -> Result<Vec<Record>, ConnectorError>;

    /// Where the deletions read so far end, when the endpoint has its own marker (Dataverse's
    /// delta link): the engine stores it and gives it back as `since` to `read_deleted` next
    /// run. None: the latest deletion time is used.
    fn deletion_position(&self, _table: &str) -> Option<String> {
        None
    }

    /// Whether these fields of `table` can be written at all, asked before a pass sends
    /// anything: an endpoint that cannot write one (an API without that property) says which,
    /// so the mapping stops with one clear error instead of failing every record.
    fn writable(&self, _table: &str, _fields: &[String]) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Whether a create makes its record with the id coupler chose (`WriteOp::Create.id`). An
    /// endpoint that gives new records ids of its own (Business Central's `SystemId`) says no:
    /// a create whose answer was lost is then found by its values, not by that id.
    fn keeps_create_ids(&self, _table: &str) -> bool {
        true
    }

    /// Records of `table` a record of the other system was just created from: an endpoint that
    /// keeps several companies apart stamps those of no company with its own (Business
    /// Central's `SetCompanyIdOnCRMAccount`). Others do nothing.
    async fn claim(&self, _table: &str, _records: &[&Record]) -> Res<()> {
        Ok(())
    }

    /// Records deleted since a point in time (or a position from `deletion_position`).
    async fn read_deleted(
        &self,
        table: &str,
        since: Option<&str>,
    ) -> Result<Vec<Tombstone>, ConnectorError>;

    /// How many records pass a filter (for the initial-sync recommendation).
    async fn count(&self, table: &str, filter: Option<&Pred>) -> Result<u64, ConnectorError>;

    /// Writes a batch; one result per operation, in order. A failed record does not fail the batch.
    async fn write(
        &self,
        table: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, ConnectorError>;

    /// The option values of an option field added beyond the catalog's (by
    /// [`Connector::insert_option_value`], in this run or an earlier one): (label, value).
    async fn added_options(&self, _table: &str, _field: &str) -> Res<Vec<(String, i64)>> {
        Ok(Vec::new())
    }

    /// Adds an option value to an option field's set, as Dataverse's Metadata API action
    /// `InsertOptionValue` does; `value` None lets the endpoint choose. Answers the new value.
    async fn insert_option_value(
        &self,
        _table: &str,
        _field: &str,
        _label: &str,
        _value: Option<i64>,
    ) -> Res<i64> {
        Err(ConnectorError::configuration(
            "this endpoint cannot add option values",
        ))
    }
}
