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
    /// Nothing was made (or its source is gone): the pass decides again.
    Absent,
    /// Several uncoupled records could be the one it made.
    InDoubt(usize),
}

/// Settles every pending create of `mapping` before its passes run. Those still in doubt stay
/// pending (and their sources fail in the pass) until they can be told apart.
pub(super) async fn resolve(
    ctx: &Ctx<'_>,
    mapping: &str,
    dirs: &[Arc<Direction>],
) -> Result<(), EngineError> {
    for (batch, arrow, creates) in ctx.state.pending_creates(mapping)? {
        let mut kept = Vec::new();
        if let Some(dir) = dirs.iter().find(|d| d.arrow == arrow) {
            for p in &creates {
                if let Found::InDoubt(count) = adopt(ctx, mapping, dir, p).await? {
                    let table = dir.target_side.table.clone();
                    ctx.in_doubt
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((mapping.to_string(), p.source.clone()), (count, table));
                    kept.push(p.clone());
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

/// Couples a pending create if its record exists on both sides.
async fn adopt(
    ctx: &Ctx<'_>,
    mapping: &str,
    dir: &Direction,
    p: &PendingCreate,
) -> Result<Found, EngineError> {
    let source = ctx.system(&dir.source_side.system)?;
    let s = source
        .read_by_ids(&dir.source_side.table, std::slice::from_ref(&p.source))
        .await?;
    let Some(sr) = s.into_iter().next() else {
        return Ok(Found::Absent);
    };
    let tr = match made(ctx, mapping, dir, p).await? {
        Ok(tr) => tr,
        Err(found) => return Ok(found),
    };
    couple(ctx, mapping, dir, &sr, &tr)?;
    Ok(Found::Coupled)
}

/// The record a pending create made: by its id, else (an endpoint with ids of its own) the one
/// uncoupled record holding the values it wrote.
async fn made(
    ctx: &Ctx<'_>,
    mapping: &str,
    dir: &Direction,
    p: &PendingCreate,
) -> Result<Result<Record, Found>, EngineError> {
    let target = ctx.system(&dir.target_side.system)?;
    let table = &dir.target_side.table;
    let by_id = target
        .read_by_ids(table, std::slice::from_ref(&p.target))
        .await?;
    if let Some(tr) = by_id.into_iter().next() {
        return Ok(Ok(tr));
    }
    if p.find_by.is_empty() || target.keeps_create_ids(table) {
        return Ok(Err(Found::Absent));
    }
    let mut free = Vec::new();
    for r in target.find(table, &p.find_by, false, None).await? {
        if ctx
            .state
            .coupling_by(mapping, dir.target(), &r.id)?
            .is_none()
        {
            free.push(r);
        }
    }
    Ok(match free.len() {
        0 => Err(Found::Absent),
        1 => Ok(free.remove(0)),
        n => Err(Found::InDoubt(n)),
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
    fields
        .keys()
        .filter(|n| {
            target_table
                .fields
                .get(*n)
                .is_some_and(|f| f.ty == FieldType::Text)
        })
        .filter_map(|n| set(n))
        .collect()
}
