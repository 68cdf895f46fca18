//! What the fault proxy can do to an answer the upstream already gave (the request was carried
//! out): lose it, cut it, garble it, reorder, drop or repeat the parts of a `$batch` answer, or
//! replace it with a server error. Both batch formats: JSON (`responses`) and multipart.

/// One way to spoil an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerFault {
    /// The connection closes without the answer.
    Lose,
    /// The head says the whole length; half the body comes, then the connection closes.
    Truncate,
    /// 200 with a body that is not what the content type says.
    Garble,
    /// The parts of a batch answer in reverse order.
    Reorder,
    /// Reversed, and without the ids that say which request each part answers (`Content-ID`,
    /// JSON `id`): only the position is left, and it is wrong.
    ReorderUnnamed,
    /// The last part of a batch answer left out.
    DropPart,
    /// Every part of a batch answer keeps its status but loses its body (the record written).
    Bodiless,
    /// The first part of a batch answer twice.
    DuplicatePart,
    /// 500 instead of the answer.
    ServerError,
    /// The answer held back for [`DELAY`]: longer than the client waits (its timeout).
    Delay,
    /// Not forwarded at all, and answered as if carried out: every batch part 2xx, no bodies.
    FakeSuccess,
    /// Carried out, then answered 400 with a body no client can read (a proxy's error page):
    /// looks like a server that does not take `$batch`. Not in [`AnswerFault::ALL`].
    RefusedAfterwards,
}

/// How long [`AnswerFault::Delay`] holds an answer back.
pub const DELAY: std::time::Duration = std::time::Duration::from_millis(2500);

impl AnswerFault {
    pub const ALL: [AnswerFault; 11] = [
        AnswerFault::Lose,
        AnswerFault::Truncate,
        AnswerFault::Garble,
        AnswerFault::Reorder,
        AnswerFault::ReorderUnnamed,
        AnswerFault::DropPart,
        AnswerFault::Bodiless,
        AnswerFault::DuplicatePart,
        AnswerFault::ServerError,
        AnswerFault::Delay,
        AnswerFault::FakeSuccess,
    ];
}

/// The parts of a batch answer rearranged by `f` (a body that is not a batch answer is kept).
pub fn rearrange(content_type: &str, body: &[u8], f: impl Fn(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    if content_type.contains("json") {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return body.to_vec();
        };
        if let Some(list) = v.get_mut("responses").and_then(|r| r.as_array_mut()) {
            let mut parts: Vec<Vec<u8>> = list.iter().map(|p| p.to_string().into_bytes()).collect();
            f(&mut parts);
            *list = parts
                .iter()
                .filter_map(|p| serde_json::from_slice(p).ok())
                .collect();
        }
        return v.to_string().into_bytes();
    }
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
    else {
        return body.to_vec();
    };
    let delim = format!("--{boundary}");
    let text = String::from_utf8_lossy(body).into_owned();
    let mut chunks: Vec<&str> = text.split(delim.as_str()).collect();
    // [preamble, part, part, ..., "--\r\n" (the close)]
    if chunks.len() < 3 {
        return body.to_vec();
    }
    let close = chunks.pop().unwrap_or_default().to_string();
    let preamble = chunks.remove(0).to_string();
    let mut parts: Vec<Vec<u8>> = chunks.iter().map(|c| c.as_bytes().to_vec()).collect();
    f(&mut parts);
    let mut out = preamble;
    for p in &parts {
        out.push_str(&delim);
        out.push_str(&String::from_utf8_lossy(p));
    }
    out.push_str(&delim);
    out.push_str(&close);
    out.into_bytes()
}

/// The body `fault` turns `body` into (`Lose`, `Truncate` and `ServerError` are the proxy's).
pub fn spoil(fault: AnswerFault, content_type: &str, body: &[u8]) -> Vec<u8> {
    match fault {
        AnswerFault::Garble => b"\x00\x7f{\"responses\": [ garbled".to_vec(),
        AnswerFault::Reorder => rearrange(content_type, body, |p| p.reverse()),
        AnswerFault::ReorderUnnamed => rearrange(content_type, body, |parts| {
            parts.reverse();
            for p in parts.iter_mut() {
                *p = unnamed(p);
            }
        }),
        AnswerFault::DropPart => rearrange(content_type, body, |p| {
            p.pop();
        }),
        AnswerFault::Bodiless => rearrange(content_type, body, |parts| {
            for p in parts.iter_mut() {
                *p = bodiless(p);
            }
        }),
        AnswerFault::DuplicatePart => rearrange(content_type, body, |p| {
            if let Some(first) = p.first().cloned() {
                p.insert(1, first);
            }
        }),
        _ => body.to_vec(),
    }
}

/// A batch part without the id of its request.
fn unnamed(part: &[u8]) -> Vec<u8> {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(part) {
        if let Some(o) = v.as_object_mut() {
            o.remove("id");
        }
        return v.to_string().into_bytes();
    }
    String::from_utf8_lossy(part)
        .split_inclusive('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-id:"))
        .collect::<String>()
        .into_bytes()
}

/// A batch part without its body: JSON `body` removed; a multipart part cut after the head of
/// the HTTP answer it holds.
fn bodiless(part: &[u8]) -> Vec<u8> {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(part) {
        if let Some(o) = v.as_object_mut() {
            o.remove("body");
        }
        return v.to_string().into_bytes();
    }
    let text = String::from_utf8_lossy(part);
    let mut heads = text.match_indices("\r\n\r\n");
    match (heads.next(), heads.next()) {
        (Some(_), Some((inner, _))) => format!("{}\r\n\r\n", &text[..inner]).into_bytes(),
        _ => part.to_vec(),
    }
}

/// For a batch request (`content_type`, `body`): the content type and body of an answer that
/// says every request succeeded (`201` for a `POST`, `204` otherwise), without records. None for
/// a request that is not a batch.
pub fn fake_success(content_type: &str, body: &[u8]) -> Option<(String, Vec<u8>)> {
    let status = |method: &str| if method == "POST" { 201 } else { 204 };
    if content_type.contains("json") {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let responses: Vec<serde_json::Value> = v
            .get("requests")?
            .as_array()?
            .iter()
            .map(|r| {
                let method = r["method"].as_str().unwrap_or_default();
                serde_json::json!({ "id": r["id"], "status": status(method), "headers": {} })
            })
            .collect();
        let answer = serde_json::json!({ "responses": responses });
        return Some(("application/json".into(), answer.to_string().into_bytes()));
    }
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"')
        .to_string();
    let text = String::from_utf8_lossy(body).into_owned();
    let mut out = String::new();
    for part in text.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let id = part
            .lines()
            .find_map(|l| l.strip_prefix("Content-ID:"))
            .map(str::trim)
            .unwrap_or("");
        let method = part
            .lines()
            .find(|l| l.contains(" HTTP/1.1"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("");
        let code = status(method);
        let reason = if code == 201 { "Created" } else { "No Content" };
        out.push_str(&format!(
            "--fake\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {id}\r\n\r\nHTTP/1.1 {code} {reason}\r\n\r\n"
        ));
    }
    out.push_str("--fake--\r\n");
    Some(("multipart/mixed; boundary=fake".into(), out.into_bytes()))
}
