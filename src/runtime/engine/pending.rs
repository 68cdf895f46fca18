//! Creates whose outcome was never heard: the run stopped between announcing and settling
//! them, or their answer was lost, cut, garbled or a server error. Before a source record may
//! be created again, the record its earlier create may have made is looked for: by the id
//! coupler chose where the endpoint keeps it (Dataverse, the embedded kind), else by the values
//! it wrote (Business Central gives new records ids of its own). Found, it is coupled; not
//! there, the create goes ahead; several candidates, the record fails and waits for a person.

use super::{reference, Ctx, Direction, EngineError};
use crate::runtime::connector::Record;
use crate::runtime::state::{tx, Coupling, PendingCreate, SideName};
use std::sync::Arc;

/// What became of one pending create.
enum Found {
    /// Its record exists: coupled now.
    Coupled,
    /// Nothing was made, or its source was coupled meanwhile (by hand): settled.
    Settled,
    /// It cannot be told whether, or which, record it made (several candidates, nothing to
    /// look for, the lookup failed): the source record fails until a person decides.
    InDoubt(String),
}

/// How much later than coupler's clock a record made by its create may be stamped, and earlier:
/// the clocks of coupler's machine and the endpoint's servers differ.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(10);

/// The key of a source record held in doubt in [`Ctx::in_doubt`].
pub(super) fn doubt_key(dir: &Direction, source: &str) -> (String, String, String) {
    (
        dir.mapping.clone(),
        dir.arrow.to_string(),
        source.to_string(),
    )
}

/// Settles every pending create of `mapping`; called before each of its passes, so a record
/// made by a create whose answer was lost is coupled before the other direction could read it
/// as a new record. Those still in doubt stay pending, and their sources fail in the passes
/// (see `decide_uncoupled`) until they can be told apart.
pub(super) async fn resolve(
    ctx: &Ctx<'_>,
    mapping: &str,
    dirs: &[Arc<Direction>],
) -> Result<(), EngineError> {
    for (batch, arrow, creates) in ctx.state.pending_creates(mapping)? {
        let Some(dir) = dirs.iter().find(|d| d.arrow == arrow) else {
            continue; // the direction is gone from the mapping: kept for when it is back
        };
        let mut kept = Vec::new();
        for p in &creates {
            let found = adopt(ctx, mapping, dir, p).await?;
            let mut held = ctx.in_doubt.lock().unwrap_or_else(|e| e.into_inner());
            match found {
                Found::InDoubt(why) => {
                    held.insert(doubt_key(dir, &p.source), why);
                    kept.push(p.clone());
                }
                Found::Coupled | Found::Settled => {
                    held.remove(&doubt_key(dir, &p.source));
                }
            }
        }
        ctx.state.transaction(|conn| {
            tx::clear_pending_creates(conn, batch)?;
            if !kept.is_empty() {
                tx::add_pending_creates(conn, mapping, arrow, &kept)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Couples a pending create if its record exists. A source coupled meanwhile (by hand, after
/// a record was held in doubt) keeps its coupling: the create is settled.
async fn adopt(
    ctx: &Ctx<'_>,
    mapping: &str,
    dir: &Direction,
    p: &PendingCreate,
) -> Result<Found, EngineError> {
    if ctx
        .state
        .coupling_by(mapping, dir.source, &p.source)?
        .is_some()
    {
        return Ok(Found::Settled);
    }
    let source = ctx.system(&dir.source_side.system)?;
    let sr = match source
        .read_by_ids(&dir.source_side.table, std::slice::from_ref(&p.source))
        .await
    {
        Ok(s) => s.into_iter().next(),
        Err(e) => return Ok(Found::InDoubt(format!("reading it failed: {e}"))),
    };
    let tr = match made(ctx, mapping, dir, p).await {
        Ok(Ok(tr)) => tr,
        Ok(Err(found)) => return Ok(found),
        Err(e) => {
            return Ok(Found::InDoubt(format!(
                "looking for what it made failed: {e}"
            )))
        }
    };
    // A source deleted meanwhile is coupled all the same: its deletion is then handled by
    // the mapping's `on delete`, instead of leaving the record made for it uncoupled.
    let sr = sr.unwrap_or_else(|| Record {
        id: p.source.clone(),
        modified_on: String::new(),
        modified_by: None,
        fields: serde_json::Map::new(),
    });
    couple(ctx, mapping, dir, &sr, &tr)?;
    Ok(Found::Coupled)
}

/// The record a pending create made: by its id, else (an endpoint with ids of its own) the one
/// uncoupled record holding the values it wrote and changed since it was announced.
async fn made(
    ctx: &Ctx<'_>,
    mapping: &str,
    dir: &Direction,
    p: &PendingCreate,
) -> Result<Result<Record, Found>, EngineError> {
    let target = ctx.system(&dir.target_side.system)?;
    let table = &dir.target_side.table;
    if target.keeps_create_ids(table) {
        let by_id = target
            .read_by_ids(table, std::slice::from_ref(&p.target))
            .await?;
        return Ok(by_id.into_iter().next().ok_or(Found::Settled));
    }
    // The id coupler chose is not the record's: no request for it, only the values.
    if p.find_by.is_empty() {
        return Ok(Err(Found::InDoubt(format!(
            "nothing it wrote to `{table}` can find the record it may have made"
        ))));
    }
    let since = p.announced.as_deref().and_then(|a| {
        let t = chrono::DateTime::parse_from_rfc3339(a).ok()? - CLOCK_SKEW;
        Some(crate::runtime::values::stamp(t.with_timezone(&chrono::Utc)))
    });
    let mut free = Vec::new();
    for r in target.find(table, &p.find_by, false, None).await? {
        let recent = since.as_deref().is_none_or(|s| r.modified_on.as_str() >= s);
        if recent
            && ctx
                .state
                .coupling_by(mapping, dir.target(), &r.id)?
                .is_none()
        {
            free.push(r);
        }
    }
    Ok(match free.len() {
        0 => Err(Found::Settled),
        1 => Ok(free.remove(0)),
        n => Err(Found::InDoubt(format!(
            "{n} uncoupled records of `{table}` hold what it wrote"
        ))),
    })
}

/// The coupling of a create found again; its deferred lookups are queued, since the run that
/// made it never got to (nothing else would ever patch them).
fn couple(
    ctx: &Ctx<'_>,
    mapping: &str,
    dir: &Direction,
    sr: &Record,
    tr: &Record,
) -> Result<(), EngineError> {
    let s_ref = reference(dir.source_kind, &ctx.table(&dir.source_side)?, sr);
    let t_ref = reference(dir.target_kind, &ctx.table(&dir.target_side)?, tr);
    // The source may have changed since: no source stamp, so it is sent again.
    let target_stamp = Some(tr.modified_on.clone());
    let (left_id, right_id, left_ref, right_ref, left_stamp, right_stamp) = match dir.source {
        SideName::Left => (
            sr.id.clone(),
            tr.id.clone(),
            s_ref,
            t_ref,
            None,
            target_stamp,
        ),
        SideName::Right => (
            tr.id.clone(),
            sr.id.clone(),
            t_ref,
            s_ref,
            target_stamp,
            None,
        ),
    };
    let c = Coupling {
        mapping: mapping.to_string(),
        left_id,
        right_id,
        left_ref,
        right_ref,
        left_stamp,
        right_stamp,
        skipped: false,
        pending: false,
    };
    Ok(ctx.state.transaction(|conn| {
        tx::put_coupling(conn, &c)?;
        if dir.has_deferred() {
            tx::add_patch(conn, &dir.mapping, dir.arrow, &sr.id)?;
        }
        Ok(())
    })?)
}

/// The values that find the record a create of `fields` makes on an endpoint with ids of its
/// own: the first match group whose target fields it all sets, else the table's key when it
/// sets it (`"No."`), else every text it writes. Empty when it writes none of these.
pub(super) fn find_by(
    dir: &Direction,
    target_table: &crate::schema::Table,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, serde_json::Value)> {
    use crate::schema::FieldType;
    let set = |name: &str| {
        fields
            .get(name)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .map(|v| (name.to_string(), v.clone()))
    };
    let all_set = |names: &mut dyn Iterator<Item = &String>| -> Option<Vec<_>> {
        names.map(|n| set(n)).collect::<Option<Vec<_>>>()
    };
    for (pairs, _) in &dir.couple_by {
        if let Some(v) = all_set(&mut pairs.iter().map(|(_, t)| t)) {
            return v;
        }
    }
    if !target_table.key.is_empty() {
        if let Some(v) = all_set(&mut target_table.key.iter()) {
            return v;
        }
    }
    // At most three texts: enough to tell records apart, short enough for any `$filter`.
    fields
        .keys()
        .filter(|n| {
            target_table
                .fields
                .get(*n)
                .is_some_and(|f| f.ty == FieldType::Text)
        })
        .filter_map(|n| set(n))
        .take(3)
        .collect()
}
