//! The OData v4 core both HTTP connectors stand on:
//!
//! - this module: query strings, the watermark (keyset) filter, paging links, literals;
//! - [`batch`]: both `$batch` formats (multipart for Dataverse, JSON for Business Central) and
//!   the one function that matches their answers to the requests;
//! - [`client`]: requests, sending (through [`super::http`]'s one retry loop), paging, counts
//!   and batched writes, with every failure typed;
//! - [`value`]: numbers read from text (decimals through `rust_decimal`);
//! - [`etags`]: the version of every record read or written, for `If-Match`.
//!
//! String literals are escaped by doubling quotes, and every query option is percent-encoded, so
//! a value can never change the shape of a filter.

pub mod batch;
pub mod client;
pub mod etags;
pub mod options;
pub mod value;

pub use batch::{write_outcome, BatchOp, BatchResponse};
pub use client::{BatchFormat, Client};
pub use etags::Etags;
pub use options::{EndpointOptions, Flavor};

use super::http;
use crate::plan::filter::Pred;
use crate::runtime::connector::{ConnectorError, Cursor, ErrorKind, Page, Record};
use crate::runtime::filter_eval;
use crate::schema::FieldType;
use serde_json::{Map, Value};
use url::Url;

/// `'it''s'`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A query string, every value percent-encoded (spaces as `%20`, which every OData server reads).
pub fn encode_query(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            format!("{k}={}", v.replace('+', "%20"))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `<root>/<path>?<query>`.
pub fn url(root: &Url, path: &str, params: &[(&str, String)]) -> Result<Url, ConnectorError> {
    let mut text = format!("{}/{}", root.as_str().trim_end_matches('/'), path);
    if !params.is_empty() {
        text.push('?');
        text.push_str(&encode_query(params));
    }
    Url::parse(&text)
        .map_err(|e| ConnectorError::configuration(format!("cannot build a URL for `{path}`: {e}")))
}

/// The literal of a GUID, lookup, date or date-time value: GUIDs lower-case and checked, dates
/// as written but only with the characters a date has (a value never changes a filter's shape).
pub fn typed_literal(ty: FieldType, v: &Value) -> Result<String, ConnectorError> {
    let bad = |what: &str, s: &str| ConnectorError::new(format!("`{s}` is not a {what}"));
    match (ty, v) {
        (_, Value::Null) => Ok("null".into()),
        (FieldType::Guid | FieldType::Lookup, Value::String(s)) => {
            let g = s.to_lowercase();
            uuid::Uuid::parse_str(&g).map_err(|_| bad("GUID", s))?;
            Ok(g)
        }
        (FieldType::Date | FieldType::Datetime, Value::String(s)) => {
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-:.+TZ".contains(c))
            {
                Ok(s.clone())
            } else {
                Err(bad("date", s))
            }
        }
        (_, Value::String(s)) => Ok(quote(s)),
        (_, Value::Bool(_) | Value::Number(_)) => Ok(v.to_string()),
        (_, other) => Ok(quote(&other.to_string())),
    }
}

/// `key eq a or key eq b …` for ids, 50 to a filter (URLs stay short); ids that are not
/// GUIDs are left out (no record has them).
pub fn id_filters(key: &str, ids: &[String]) -> Vec<String> {
    let guids: Vec<String> = ids
        .iter()
        .map(|s| s.to_lowercase())
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .collect();
    guids
        .chunks(50)
        .map(|c| {
            c.iter()
                .map(|id| format!("{key} eq {id}"))
                .collect::<Vec<_>>()
                .join(" or ")
        })
        .collect()
}

/// A date-time as coupler compares and stores stamps: UTC, milliseconds, `Z`.
pub fn stamp(value: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|d| crate::runtime::values::stamp(d.with_timezone(&chrono::Utc)))
}

/// Strictly after a cursor in (modified, key) order:
/// `(m gt T or (m eq T and k gt ID))`. Keys are GUIDs, compared as such by the servers.
/// A cursor without an id (the engine reads again from a point in time) is `m ge T`.
pub fn keyset(modified: &str, key: &str, after: &Cursor) -> String {
    let t = &after.modified_on;
    if after.id.is_empty() || uuid::Uuid::parse_str(&after.id).is_err() {
        return format!("{modified} ge {t}");
    }
    format!(
        "({modified} gt {t} or ({modified} eq {t} and {key} gt {}))",
        after.id
    )
}

/// `a and b and c`, each part parenthesized when it has an `or`.
pub fn and_all(parts: &[String]) -> Option<String> {
    let parts: Vec<String> = parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            if p.contains(" or ") && !(p.starts_with('(') && p.ends_with(')')) {
                format!("({p})")
            } else {
                p.clone()
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// The rows of a collection response.
pub fn rows(json: &Value) -> Vec<Map<String, Value>> {
    json.get("value")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_object().cloned()).collect())
        .unwrap_or_default()
}

/// `@odata.nextLink`, absolute or relative (resolved against the request URL).
///
/// The link must stay on the request's origin (scheme, host and port): a server that sends
/// the client elsewhere would receive the bearer token there, and a link that cannot be read
/// would end the read early without a word. Both are errors, never the end of the data.
pub fn next_link(json: &Value, request: &Url) -> Result<Option<Url>, ConnectorError> {
    link(json, "@odata.nextLink", request)
}

/// `@odata.deltaLink`, resolved and checked as a next link.
pub fn delta_link(json: &Value, request: &Url) -> Result<Option<Url>, ConnectorError> {
    link(json, "@odata.deltaLink", request)
}

fn link(json: &Value, name: &str, request: &Url) -> Result<Option<Url>, ConnectorError> {
    let Some(value) = json.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let refused = |why: String| {
        Err(ConnectorError::of(
            ErrorKind::Rejected,
            format!("`{name}` of {} {why}", http::path_of(request)),
        ))
    };
    let Some(text) = value.as_str() else {
        return refused(format!("is not a text: {value}"));
    };
    let Ok(url) = request.join(text) else {
        return refused(format!("is not a URL: `{text}`"));
    };
    if url.origin() != request.origin() {
        return refused(format!(
            "leads to another origin ({}): not followed, the access token stays with {}",
            url.origin().ascii_serialization(),
            request.origin().ascii_serialization()
        ));
    }
    Ok(Some(url))
}

/// A page of changes: the records read that pass the part of the filter the server could not
/// apply (`rest`), and the cursor of the next page.
pub fn page(raw: Vec<Record>, rest: Option<&Pred>, next: Option<Cursor>) -> Page {
    let records = raw
        .into_iter()
        .filter(|r| rest.is_none_or(|p| filter_eval::matches(p, r)))
        .collect();
    Page {
        records,
        next,
        position: None,
    }
}

/// Whether `(a_stamp, a_id) <= (b_stamp, b_id)`.
pub fn not_after(stamp: &str, id: &str, cursor: &Cursor) -> bool {
    (stamp, id) <= (cursor.modified_on.as_str(), cursor.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_quotes_doubled() {
        let root = Url::parse("http://127.0.0.1:4004/api/data/v9.2").unwrap();
        let f = format!("name eq {}", quote("x' or 1 eq 1 or name eq '"));
        let u = url(&root, "accounts", &[("$filter", f.clone())]).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:4004/api/data/v9.2/accounts?$filter=name%20eq%20%27x%27%27%20or%201%20eq%201%20or%20name%20eq%20%27%27%27"
        );
        let back: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(back, vec![("$filter".to_string(), f)]);
        let amp = url(
            &root,
            "accounts",
            &[("$filter", "name eq 'a&b=c+d#e'".into())],
        )
        .unwrap();
        let back: Vec<(String, String)> = amp.query_pairs().into_owned().collect();
        assert_eq!(back[0].1, "name eq 'a&b=c+d#e'");
    }

    #[test]
    fn keyset_and_conjunction() {
        let c = Cursor {
            modified_on: "2024-01-01T10:00:00.000Z".into(),
            id: "0000000a-0000-0000-0000-000000000000".into(),
        };
        let k = keyset("modifiedon", "accountid", &c);
        assert_eq!(
            k,
            "(modifiedon gt 2024-01-01T10:00:00.000Z or (modifiedon eq 2024-01-01T10:00:00.000Z and accountid gt 0000000a-0000-0000-0000-000000000000))"
        );
        assert_eq!(
            and_all(&["a eq 1 or b eq 2".into(), k.clone(), String::new()]).unwrap(),
            format!("(a eq 1 or b eq 2) and {k}")
        );
        assert_eq!(and_all(&[]), None);
        let at = Cursor {
            modified_on: c.modified_on.clone(),
            id: String::new(),
        };
        assert_eq!(
            keyset("modifiedon", "accountid", &at),
            "modifiedon ge 2024-01-01T10:00:00.000Z"
        );
    }

    #[test]
    fn next_links_resolve_relative_and_absolute() {
        let req = Url::parse("http://127.0.0.1:1/api/data/v9.2/accounts?$filter=x").unwrap();
        let rel = serde_json::json!({"@odata.nextLink": "accounts?%24skiptoken=2"});
        assert_eq!(
            next_link(&rel, &req).unwrap().unwrap().as_str(),
            "http://127.0.0.1:1/api/data/v9.2/accounts?%24skiptoken=2"
        );
        let abs = serde_json::json!({"@odata.nextLink": "http://127.0.0.1:1/api/data/v9.2/accounts?$skiptoken=abc"});
        assert_eq!(
            next_link(&abs, &req).unwrap().unwrap().as_str(),
            "http://127.0.0.1:1/api/data/v9.2/accounts?$skiptoken=abc"
        );
        assert_eq!(next_link(&serde_json::json!({}), &req).unwrap(), None);
    }

    #[test]
    fn next_links_never_leave_the_origin() {
        let req = Url::parse("https://org.crm.dynamics.com/api/data/v9.2/accounts").unwrap();
        for link in [
            "https://evil.example/api/data/v9.2/accounts?$skiptoken=abc",
            "http://org.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=abc",
            "https://org.crm.dynamics.com:8443/api/data/v9.2/accounts",
            "//evil.example/x",
        ] {
            let json = serde_json::json!({ "@odata.nextLink": link });
            let e = next_link(&json, &req).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Rejected, "{link}");
            assert!(e.message.contains("another origin"), "{}", e.message);
            let json = serde_json::json!({ "@odata.deltaLink": link });
            assert!(delta_link(&json, &req).is_err(), "{link}");
        }
        let garbled = serde_json::json!({"@odata.nextLink": 42});
        assert!(next_link(&garbled, &req).is_err());
    }

    #[test]
    fn stamps_are_normalized_to_milliseconds() {
        assert_eq!(
            stamp("2024-05-01T10:00:00Z").unwrap(),
            "2024-05-01T10:00:00.000Z"
        );
        assert_eq!(
            stamp("2024-05-01T12:00:00.1234567+02:00").unwrap(),
            "2024-05-01T10:00:00.123Z"
        );
    }
}
