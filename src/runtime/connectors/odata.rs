//! OData v4 pieces both connectors use: query strings, the watermark (keyset) filter, paging
//! links, literals, the parts of a filter evaluated locally, and both `$batch` formats
//! (multipart for Dataverse, JSON for Business Central).
//!
//! String literals are escaped by doubling quotes, and every query option is percent-encoded, so
//! a value can never change the shape of a filter.

use crate::runtime::connector::Cursor;
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
pub fn url(root: &Url, path: &str, params: &[(&str, String)]) -> Result<Url, String> {
    let mut text = format!("{}/{}", root.as_str().trim_end_matches('/'), path);
    if !params.is_empty() {
        text.push('?');
        text.push_str(&encode_query(params));
    }
    Url::parse(&text).map_err(|e| format!("cannot build a URL for `{path}`: {e}"))
}

/// A date-time as coupler compares and stores stamps: UTC, milliseconds, `Z`.
pub fn stamp(value: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        })
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
pub fn next_link(json: &Value, request: &Url) -> Option<Url> {
    let link = json.get("@odata.nextLink")?.as_str()?;
    request.join(link).ok()
}

/// `@odata.deltaLink`, resolved as a next link.
pub fn delta_link(json: &Value, request: &Url) -> Option<Url> {
    let link = json.get("@odata.deltaLink")?.as_str()?;
    request.join(link).ok()
}

/// Whether `(a_stamp, a_id) <= (b_stamp, b_id)`.
pub fn not_after(stamp: &str, id: &str, cursor: &Cursor) -> bool {
    (stamp, id) <= (cursor.modified_on.as_str(), cursor.id.as_str())
}

/// Evaluates the part of a filter the endpoint could not (fields without an API name): the
/// engine's own evaluator.
pub use crate::runtime::engine::filter_eval::matches;

/// One operation of a `$batch`. `url` is relative to the service root (or absolute).
#[derive(Debug, Clone)]
pub struct BatchOp {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// One response of a `$batch`.
#[derive(Debug, Clone, Default)]
pub struct BatchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl BatchResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A `multipart/mixed` batch body (Dataverse): every operation on its own, outside change sets,
/// so one failing record does not roll back the others.
pub fn multipart_batch(ops: &[BatchOp], boundary: &str) -> Vec<u8> {
    let mut out = String::new();
    for (i, op) in ops.iter().enumerate() {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {}\r\n\r\n",
            i + 1
        ));
        out.push_str(&format!("{} {} HTTP/1.1\r\n", op.method, op.url));
        for (k, v) in &op.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        match &op.body {
            Some(b) => {
                out.push_str("Content-Type: application/json\r\n\r\n");
                out.push_str(&b.to_string());
                out.push_str("\r\n");
            }
            None => out.push_str("\r\n"),
        }
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

/// The `boundary=` parameter of a multipart content type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn split_head(part: &[u8]) -> (&[u8], &[u8]) {
    let text = part;
    for sep in [&b"\r\n\r\n"[..], &b"\n\n"[..]] {
        if let Some(i) = find(text, sep) {
            return (&text[..i], &text[i + sep.len()..]);
        }
    }
    (text, &[])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn headers_of(head: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The responses of a multipart batch response, in order (change sets flattened).
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<BatchResponse>, String> {
    let boundary = boundary_of(content_type)
        .ok_or_else(|| format!("the batch response has no boundary (`{content_type}`)"))?;
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = body;
    // Skip the preamble.
    let Some(start) = find(rest, delim.as_bytes()) else {
        return Err("the batch response has no parts".into());
    };
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let end = find(rest, delim.as_bytes()).unwrap_or(rest.len());
        let part = &rest[..end];
        let part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        let (head, inner) = split_head(part);
        let headers = headers_of(head);
        let ct = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if ct.to_ascii_lowercase().starts_with("multipart/") {
            out.extend(parse_multipart(&ct, inner)?);
        } else {
            out.push(parse_http_response(inner)?);
        }
        if end >= rest.len() {
            break;
        }
        rest = &rest[end + delim.len()..];
    }
    Ok(out)
}

fn parse_http_response(text: &[u8]) -> Result<BatchResponse, String> {
    let (head, body) = split_head(text);
    let head_text = String::from_utf8_lossy(head);
    let mut lines = head_text.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("a batch part has no HTTP status line: `{status_line}`"))?;
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = body.to_vec();
    while body.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        body.pop();
    }
    Ok(BatchResponse {
        status,
        headers,
        body,
    })
}

/// A JSON batch body (Business Central, OData 4.01 JSON format).
pub fn json_batch(ops: &[BatchOp]) -> Value {
    let requests: Vec<Value> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut headers = Map::new();
            for (k, v) in &op.headers {
                headers.insert(k.clone(), Value::String(v.clone()));
            }
            let mut r = Map::new();
            r.insert("id".into(), Value::String((i + 1).to_string()));
            r.insert("method".into(), Value::String(op.method.into()));
            r.insert("url".into(), Value::String(op.url.clone()));
            if let Some(b) = &op.body {
                headers.insert("Content-Type".into(), "application/json".into());
                r.insert("body".into(), b.clone());
            }
            r.insert("headers".into(), Value::Object(headers));
            Value::Object(r)
        })
        .collect();
    serde_json::json!({ "requests": requests })
}

/// The responses of a JSON batch, in the order of the requests (matched by id).
pub fn parse_json_batch(json: &Value, n: usize) -> Result<Vec<BatchResponse>, String> {
    let responses = json
        .get("responses")
        .and_then(Value::as_array)
        .ok_or("the batch response has no `responses`")?;
    let mut out: Vec<Option<BatchResponse>> = vec![None; n];
    for (pos, r) in responses.iter().enumerate() {
        let idx = r
            .get("id")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(v.as_u64()?.to_string()))
            })
            .and_then(|s| s.parse::<usize>().ok())
            .map(|i| i.saturating_sub(1))
            .unwrap_or(pos);
        if idx >= n {
            continue;
        }
        let headers = r
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let body = match r.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(b) => serde_json::to_vec(b).unwrap_or_default(),
        };
        out[idx] = Some(BatchResponse {
            status: r.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
            headers,
            body,
        });
    }
    Ok(out
        .into_iter()
        .map(|r| {
            r.unwrap_or(BatchResponse {
                status: 0,
                headers: Vec::new(),
                body: b"the batch response has no answer for this request".to_vec(),
            })
        })
        .collect())
}

/// A write response -> the result for its record: the values the endpoint returned, or why it
/// failed (a 412 is the conflict path: the record changed since it was read).
pub fn write_outcome(
    op: &crate::runtime::connector::WriteOp,
    r: Result<BatchResponse, String>,
) -> Result<Option<Map<String, Value>>, String> {
    use crate::runtime::connector::WriteOp;
    let r = r?;
    if (200..300).contains(&r.status) {
        return Ok(r
            .json()
            .and_then(|v| v.as_object().cloned())
            .filter(|m| !m.is_empty()));
    }
    let reason = super::http::error_reason(r.status, &r.body);
    Err(match (r.status, op) {
        (412, _) => format!("changed by someone else since it was read ({reason})"),
        (404, WriteOp::Update { id, .. }) => {
            format!("no record `{id}` (deleted?); it is not created again: {reason}")
        }
        (404, WriteOp::Delete { id }) => format!("no record `{id}` (deleted?): {reason}"),
        _ => reason,
    })
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
            next_link(&rel, &req).unwrap().as_str(),
            "http://127.0.0.1:1/api/data/v9.2/accounts?%24skiptoken=2"
        );
        let abs = serde_json::json!({"@odata.nextLink": "https://org.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=abc"});
        assert_eq!(
            next_link(&abs, &req).unwrap().as_str(),
            "https://org.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=abc"
        );
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

    #[test]
    fn multipart_round_trip() {
        let ops = vec![
            BatchOp {
                method: "PATCH",
                url: "accounts(1)".into(),
                headers: vec![("If-Match".into(), "*".into())],
                body: Some(serde_json::json!({"name": "a"})),
            },
            BatchOp {
                method: "DELETE",
                url: "accounts(2)".into(),
                headers: vec![],
                body: None,
            },
        ];
        let body = String::from_utf8(multipart_batch(&ops, "batch_x")).unwrap();
        assert!(body.starts_with("--batch_x\r\nContent-Type: application/http\r\n"));
        assert!(body.contains("PATCH accounts(1) HTTP/1.1\r\nIf-Match: *\r\nContent-Type: application/json\r\n\r\n{\"name\":\"a\"}\r\n"));
        assert!(body.ends_with("--batch_x--\r\n"));
        let resp = "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\nOData-EntityId: http://h/accounts(1)\r\n\r\n\r\n--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n--changesetresponse_2\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"0x1\",\"message\":\"gone\"}}\r\n--changesetresponse_2--\r\n--batchresponse_1--\r\n";
        let parts =
            parse_multipart("multipart/mixed; boundary=batchresponse_1", resp.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].status, 204);
        assert_eq!(
            parts[0].header("odata-entityid"),
            Some("http://h/accounts(1)")
        );
        assert_eq!(parts[1].status, 404);
        assert_eq!(parts[1].json().unwrap()["error"]["message"], "gone");
    }

    #[test]
    fn json_batch_matches_responses_by_id() {
        let ops = vec![
            BatchOp {
                method: "POST",
                url: "companies(1)/customers".into(),
                headers: vec![],
                body: Some(serde_json::json!({"displayName": "a"})),
            },
            BatchOp {
                method: "DELETE",
                url: "companies(1)/customers(2)".into(),
                headers: vec![("If-Match".into(), "*".into())],
                body: None,
            },
        ];
        let b = json_batch(&ops);
        assert_eq!(b["requests"][0]["id"], "1");
        assert_eq!(b["requests"][1]["headers"]["If-Match"], "*");
        let resp = serde_json::json!({"responses": [
            {"id": "2", "status": 412, "body": {"error": {"message": "changed"}}},
            {"id": "1", "status": 201, "body": {"id": "x"}},
        ]});
        let r = parse_json_batch(&resp, 2).unwrap();
        assert_eq!(r[0].status, 201);
        assert_eq!(r[1].status, 412);
    }
}
