//! Both `$batch` formats: multipart (Dataverse) and JSON (Business Central, OData 4.01), and
//! [`match_answers`], the one place where the answers of a batch meet their requests.

use super::super::http::error_reason;
use crate::runtime::connector::{ConnectorError, ErrorKind, WriteOp};
use serde_json::{Map, Value};

/// One operation of a `$batch`. `url` is relative to the service root (or absolute).
#[derive(Debug, Clone)]
pub struct BatchOp {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Sent at most once, never replayed after a lost answer: sent again, it would not leave
    /// the same record (a Dataverse create holding a create-only column fails as an update
    /// of the record its first sending made).
    pub once: bool,
}

/// One response of a `$batch`.
#[derive(Debug, Clone, Default)]
pub struct BatchResponse {
    /// The request it answers (0-based), when the answer says (`Content-ID`, JSON `id`).
    pub answers: Option<usize>,
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

/// The request line target of an operation in a multipart batch: Microsoft documents Dataverse's
/// batch parts with the absolute path (`/api/data/v9.2/accounts`) or the absolute URL, never a
/// path relative to the service root. `root_path` is the service root's path
/// (`/api/data/v9.2`); an absolute `url` (a path or `http(s)://…`) stays as it is.
pub fn request_target(root_path: &str, url: &str) -> String {
    if url.starts_with('/') || url.starts_with("http://") || url.starts_with("https://") {
        return url.to_string();
    }
    format!("{}/{url}", root_path.trim_end_matches('/'))
}

/// A `multipart/mixed` batch body (Dataverse): every operation on its own, outside change sets,
/// so one failing record does not roll back the others. Request lines carry absolute paths
/// under `root_path`, the service root's path ([`request_target`]).
pub fn multipart_batch(ops: &[BatchOp], boundary: &str, root_path: &str) -> Vec<u8> {
    let mut out = String::new();
    for (i, op) in ops.iter().enumerate() {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {}\r\n\r\n",
            i + 1
        ));
        out.push_str(&format!(
            "{} {} HTTP/1.1\r\n",
            op.method,
            request_target(root_path, &op.url)
        ));
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
pub fn parse_multipart(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<BatchResponse>, ConnectorError> {
    let boundary = boundary_of(content_type).ok_or_else(|| {
        garbled(format!(
            "the batch response has no boundary (`{content_type}`)"
        ))
    })?;
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = body;
    // Skip the preamble.
    let Some(start) = find(rest, delim.as_bytes()) else {
        return Err(garbled("the batch response has no parts".into()));
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
            let mut answer = parse_http_response(inner)?;
            answer.answers = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-id"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .and_then(|i| i.checked_sub(1));
            out.push(answer);
        }
        if end >= rest.len() {
            break;
        }
        rest = &rest[end + delim.len()..];
    }
    Ok(out)
}

fn parse_http_response(text: &[u8]) -> Result<BatchResponse, ConnectorError> {
    let (head, body) = split_head(text);
    let head_text = String::from_utf8_lossy(head);
    let mut lines = head_text.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            garbled(format!(
                "a batch part has no HTTP status line: `{status_line}`"
            ))
        })?;
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
        answers: None,
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

/// The responses of a JSON batch, in the order the server sent them, each with the request it
/// answers (its `id`).
pub fn parse_json_batch(json: &Value) -> Result<Vec<BatchResponse>, ConnectorError> {
    let responses = json
        .get("responses")
        .and_then(Value::as_array)
        .ok_or_else(|| garbled("the batch response has no `responses`".into()))?;
    Ok(responses.iter().map(json_answer).collect())
}

fn json_answer(r: &Value) -> BatchResponse {
    let answers = r
        .get("id")
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| Some(v.as_u64()?.to_string()))
        })
        .and_then(|s| s.parse::<usize>().ok())
        .and_then(|i| i.checked_sub(1));
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
    let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
    BatchResponse {
        answers,
        status: u16::try_from(status).unwrap_or(0),
        headers,
        body,
    }
}

/// The answers of a batch of `n` requests -> one result per request, in request order. Answers
/// that name their request are matched by it; a request named twice, or not at all, gets an
/// error (its outcome is unknown: the answer was lost). Answers that do not name theirs are
/// matched by position only where the format allows it (`by_position`: multipart, whose parts
/// outside change sets need not carry a `Content-ID`), and only when there are exactly `n` of
/// them; otherwise every request's outcome is unknown. A JSON batch answer must name every
/// request (OData 4.01 JSON format: each response has the `id` of its request).
pub fn match_answers(
    answers: Vec<BatchResponse>,
    n: usize,
    by_position: bool,
) -> Vec<Result<BatchResponse, ConnectorError>> {
    let lost = |why: &str| garbled(format!("{why}; whether it was written is unknown"));
    if answers.iter().all(|a| a.answers.is_some()) && !answers.is_empty() {
        let mut out: Vec<Option<Result<BatchResponse, ConnectorError>>> = vec![None; n];
        for a in answers {
            let Some(slot) = a.answers.and_then(|i| out.get_mut(i)) else {
                continue; // answers a request that was not asked
            };
            *slot = Some(match slot {
                None => Ok(a),
                Some(_) => Err(lost("the batch response answers this request twice")),
            });
        }
        return out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(lost("the batch response has no answer for it"))))
            .collect();
    }
    if !by_position {
        let why = "the $batch response has answers that do not say which request they answer";
        return (0..n).map(|_| Err(lost(why))).collect();
    }
    if answers.len() != n {
        let why = format!(
            "the $batch response has {} answers for {n} requests",
            answers.len()
        );
        return (0..n).map(|_| Err(lost(&why))).collect();
    }
    answers.into_iter().map(Ok).collect()
}

/// A batch answer that cannot be read: transient (the writes may have happened; the engine
/// finds out on the next read instead of trusting a garbled answer).
fn garbled(message: String) -> ConnectorError {
    ConnectorError::of(ErrorKind::Transient, message)
}

/// A write response -> the result for its record: the values the endpoint returned, or why it
/// failed (a 412 is the conflict path: the record changed since it was read).
pub fn write_outcome(
    op: &WriteOp,
    r: Result<BatchResponse, ConnectorError>,
) -> Result<Option<Map<String, Value>>, ConnectorError> {
    let r = r?;
    if (200..300).contains(&r.status) {
        return Ok(r
            .json()
            .and_then(|v| v.as_object().cloned())
            .filter(|m| !m.is_empty()));
    }
    let reason = error_reason(r.status, &r.body);
    let kind = ErrorKind::of_status(r.status);
    Err(ConnectorError::of(
        kind,
        match (r.status, op) {
            (412, _) => format!("changed by someone else since it was read ({reason})"),
            (404, WriteOp::Update { id, .. }) => {
                format!("no record `{id}` (deleted?); it is not created again: {reason}")
            }
            (404, WriteOp::Delete { id }) => format!("no record `{id}` (deleted?): {reason}"),
            _ => reason,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_round_trip() {
        let ops = vec![
            BatchOp {
                method: "PATCH",
                url: "accounts(1)".into(),
                headers: vec![("If-Match".into(), "*".into())],
                body: Some(serde_json::json!({"name": "a"})),
                once: false,
            },
            BatchOp {
                method: "DELETE",
                url: "accounts(2)".into(),
                headers: vec![],
                body: None,
                once: false,
            },
        ];
        let body = String::from_utf8(multipart_batch(&ops, "batch_x", "/api/data/v9.2")).unwrap();
        assert!(body.starts_with("--batch_x\r\nContent-Type: application/http\r\n"));
        assert!(body.contains("PATCH /api/data/v9.2/accounts(1) HTTP/1.1\r\nIf-Match: *\r\nContent-Type: application/json\r\n\r\n{\"name\":\"a\"}\r\n"));
        assert!(body.contains("DELETE /api/data/v9.2/accounts(2) HTTP/1.1\r\n"));
        assert!(!body.contains("PATCH accounts(1)"));
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
    fn request_lines_are_absolute() {
        // a relative op url goes under the service root's path, trailing slash or not
        assert_eq!(
            request_target("/api/data/v9.2", "accounts(1)"),
            "/api/data/v9.2/accounts(1)"
        );
        assert_eq!(
            request_target("/api/data/v9.2/", "accounts?$top=1"),
            "/api/data/v9.2/accounts?$top=1"
        );
        assert_eq!(request_target("/", "accounts"), "/accounts");
        // already absolute: kept
        assert_eq!(
            request_target("/api/data/v9.2", "/api/data/v9.2/accounts"),
            "/api/data/v9.2/accounts"
        );
        assert_eq!(
            request_target(
                "/api/data/v9.2",
                "https://org.crm.dynamics.com/api/data/v9.2/accounts"
            ),
            "https://org.crm.dynamics.com/api/data/v9.2/accounts"
        );
        let ops = vec![BatchOp {
            method: "POST",
            url: "accounts".into(),
            headers: vec![],
            body: Some(serde_json::json!({})),
            once: false,
        }];
        let body = String::from_utf8(multipart_batch(&ops, "b", "/org/api/data/v9.2")).unwrap();
        assert!(body.contains("\r\n\r\nPOST /org/api/data/v9.2/accounts HTTP/1.1\r\n"));
    }

    #[test]
    fn json_batch_matches_responses_by_id() {
        let ops = vec![
            BatchOp {
                method: "POST",
                url: "companies(1)/customers".into(),
                headers: vec![],
                body: Some(serde_json::json!({"displayName": "a"})),
                once: false,
            },
            BatchOp {
                method: "DELETE",
                url: "companies(1)/customers(2)".into(),
                headers: vec![("If-Match".into(), "*".into())],
                body: None,
                once: false,
            },
        ];
        let b = json_batch(&ops);
        assert_eq!(b["requests"][0]["id"], "1");
        assert_eq!(b["requests"][1]["headers"]["If-Match"], "*");
        let resp = serde_json::json!({"responses": [
            {"id": "2", "status": 412, "body": {"error": {"message": "changed"}}},
            {"id": "1", "status": 201, "body": {"id": "x"}},
        ]});
        let r = match_answers(parse_json_batch(&resp).unwrap(), 2, false);
        assert_eq!(r[0].as_ref().unwrap().status, 201);
        assert_eq!(r[1].as_ref().unwrap().status, 412);
    }
}
