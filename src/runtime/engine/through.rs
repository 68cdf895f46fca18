//! `through T(FROM -> TO where FILTER)`: the rows of T the filter keeps, read once a run, pair
//! FROM values with TO values. Reading the line's side, a FROM becomes its TO before the `via`
//! lookup; writing it, the TO the lookup gave becomes its FROM (a company contact's number and
//! the customer it is, through Contact Business Relation). A value with no row or several rows is
//! a record failure that says so: never a guess.

use super::error::{EngineError, Res};
use crate::plan::direction::Direction;
use crate::plan::direction::ThroughRef;
use crate::runtime::connector::{ChangeQuery, Connector, Cursor};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

const PAGE: usize = 1000;

/// FROM -> TOs and TO -> FROMs, keys compared ignoring case (Business Central codes).
#[derive(Debug, Default)]
pub struct Exchange {
    forward: HashMap<String, Vec<String>>,
    backward: HashMap<String, Vec<String>>,
}

/// Per clause as written; Err says why its table could not be read.
pub type Throughs = HashMap<String, Result<Exchange, String>>;

/// Reads the rows of each clause a pass uses, at the pass's start: a mapping that ran before it
/// in this run may have added rows (a customer created from Sales gets its company contact).
pub async fn load(dir: &Direction, systems: &HashMap<String, Arc<dyn Connector>>) -> Throughs {
    let mut out = Throughs::new();
    let steps = dir
        .steps
        .iter()
        .chain(dir.split.iter().flat_map(|s| s.steps.iter()));
    for t in steps.filter_map(|s| s.through.as_ref()) {
        if !out.contains_key(&t.shown) {
            out.insert(t.shown.clone(), read(t, systems).await);
        }
    }
    out
}

async fn read(
    t: &ThroughRef,
    systems: &HashMap<String, Arc<dyn Connector>>,
) -> Result<Exchange, String> {
    let connector = systems
        .get(&t.system)
        .ok_or_else(|| format!("system `{}` is not bound in this run", t.system))?;
    let fields = [t.from.clone(), t.to.clone()];
    let mut x = Exchange::default();
    let mut after: Option<Cursor> = None;
    loop {
        let q = ChangeQuery {
            table: &t.table,
            filter: t.filter.as_ref(),
            since: None,
            exclude_modified_by: None,
            page_size: PAGE,
            fields: Some(&fields),
        };
        let page = connector
            .read_changes(&q, after.as_ref())
            .await
            .map_err(|e| format!("reading `{}.{}` failed: {e}", t.system, t.table))?;
        for r in &page.records {
            let (Some(from), Some(to)) = (text(r.get(&t.from)), text(r.get(&t.to))) else {
                continue;
            };
            x.forward
                .entry(from.to_lowercase())
                .or_default()
                .push(to.clone());
            x.backward.entry(to.to_lowercase()).or_default().push(from);
        }
        match page.next {
            Some(c) => after = Some(c),
            None => return Ok(x),
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Exchanges `value` (FROM -> TO when `forward`, else TO -> FROM). A blank value stays blank.
pub fn exchange(
    throughs: &Throughs,
    t: &ThroughRef,
    value: &Value,
    forward: bool,
    field: &str,
) -> Res<Value> {
    let Some(v) = text(value) else {
        return Ok(Value::Null);
    };
    let fail = |why: String| EngineError::ThroughFailed {
        field: field.to_string(),
        value: v.clone(),
        through: t.shown.clone(),
        why,
    };
    let x = match throughs.get(&t.shown) {
        Some(Ok(x)) => x,
        Some(Err(why)) => return Err(fail(why.clone())),
        None => return Err(fail("its table was not read in this run".into())),
    };
    let (map, have, want) = if forward {
        (&x.forward, &t.from, &t.to)
    } else {
        (&x.backward, &t.to, &t.from)
    };
    match map.get(&v.to_lowercase()).map(Vec::as_slice) {
        Some([one]) => Ok(Value::String(one.clone())),
        Some(many) if many.len() > 1 => Err(fail(format!(
            "{} rows have this `{have}` ({}): which `{want}` is meant is not clear",
            many.len(),
            many.join(", ")
        ))),
        _ => Err(fail(format!(
            "no row of `{}.{}` has this `{have}`",
            t.system, t.table
        ))),
    }
}
