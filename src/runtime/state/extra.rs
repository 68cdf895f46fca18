//! Records waiting for their parent (`[parent]` lookups) and the extra target records of a
//! `split`: both belong to the couplings of their mapping.

use super::{err, Res, StateStore};
use crate::analysis::Arrow;
use crate::runtime::sql::Cached;
use rusqlite::{params, Connection};
use std::collections::HashMap;

/// A record that waits until its parent is coupled.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub source_id: String,
    pub via: String,
    pub parent_ref: String,
}

/// One extra target record of a split source record.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub part: u32,
    pub target_id: String,
    /// Announced before its write; cleared once written.
    pub pending: bool,
}

impl StateStore {
    pub fn held(&self, mapping: &str, direction: Arrow) -> Res<Vec<Held>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT source_id, via, parent_ref FROM held WHERE mapping = ?1 AND direction = ?2 ORDER BY source_id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![mapping, direction], |r| {
                Ok(Held {
                    source_id: r.get(0)?,
                    via: r.get(1)?,
                    parent_ref: r.get(2)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn count_held(&self, mapping: &str) -> Res<u64> {
        let conn = self.lock();
        conn.one(
            "SELECT COUNT(*) FROM held WHERE mapping = ?1",
            [mapping],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(err)
    }

    /// The parts of these source records, by source id, in part order.
    pub fn parts_of(&self, mapping: &str, sources: &[&str]) -> Res<HashMap<String, Vec<Part>>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT part, target_id, pending FROM parts WHERE mapping = ?1 AND source_id = ?2 AND part > 0 ORDER BY part",
            )
            .map_err(err)?;
        let mut out = HashMap::new();
        for source in sources {
            let rows = stmt
                .query_map(params![mapping, source], |r| {
                    Ok(Part {
                        part: r.get(0)?,
                        target_id: r.get(1)?,
                        pending: r.get::<_, i64>(2)? != 0,
                    })
                })
                .map_err(err)?;
            let parts: Vec<Part> = rows.collect::<Result<_, _>>().map_err(err)?;
            if !parts.is_empty() {
                out.insert(source.to_string(), parts);
            }
        }
        Ok(out)
    }

    /// Source records with parts announced but not confirmed, or whose parts are due (a run
    /// stopped in between): the next run handles them again.
    pub fn pending_part_sources(&self, mapping: &str) -> Res<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT source_id FROM parts WHERE mapping = ?1 AND pending = 1 ORDER BY source_id",
            )
            .map_err(err)?;
        let rows = stmt.query_map([mapping], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

pub fn hold(
    conn: &Connection,
    mapping: &str,
    direction: Arrow,
    source: &str,
    via: &str,
    parent_ref: &str,
) -> Res<()> {
    conn.exec(
        "INSERT OR REPLACE INTO held (mapping, direction, source_id, via, parent_ref) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![mapping, direction, source, via, parent_ref],
    )
    .map_err(err)?;
    Ok(())
}

pub fn release(conn: &Connection, mapping: &str, direction: Arrow, source: &str) -> Res<()> {
    conn.exec(
        "DELETE FROM held WHERE mapping = ?1 AND direction = ?2 AND source_id = ?3",
        params![mapping, direction, source],
    )
    .map_err(err)?;
    Ok(())
}

pub fn put_part(
    conn: &Connection,
    mapping: &str,
    source: &str,
    part: u32,
    target: &str,
    pending: bool,
) -> Res<()> {
    conn.exec(
        "INSERT OR REPLACE INTO parts (mapping, source_id, part, target_id, pending) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![mapping, source, part, target, pending as i64],
    )
    .map_err(err)?;
    Ok(())
}

pub fn delete_part(conn: &Connection, mapping: &str, source: &str, part: u32) -> Res<()> {
    conn.exec(
        "DELETE FROM parts WHERE mapping = ?1 AND source_id = ?2 AND part = ?3",
        params![mapping, source, part],
    )
    .map_err(err)?;
    Ok(())
}

/// Part 0 marks a source record whose extra records are due: written with the main record's
/// coupling, removed once its parts are in line. A run that stops in between leaves it.
pub fn mark_parts_due(conn: &Connection, mapping: &str, source: &str) -> Res<()> {
    put_part(conn, mapping, source, 0, "", true)
}

pub fn parts_done(conn: &Connection, mapping: &str, source: &str) -> Res<()> {
    delete_part(conn, mapping, source, 0)
}

/// A source record that is gone: nothing is due any more, and what was announced stays as it is.
pub fn settle_parts(conn: &Connection, mapping: &str, source: &str) -> Res<()> {
    parts_done(conn, mapping, source)?;
    conn.exec(
        "UPDATE parts SET pending = 0 WHERE mapping = ?1 AND source_id = ?2",
        params![mapping, source],
    )
    .map_err(err)?;
    Ok(())
}

/// Releases the records of `ids` that waited for their parent (they were deleted).
pub fn release_all(conn: &Connection, mapping: &str, direction: Arrow, ids: &[String]) -> Res<()> {
    for id in ids {
        release(conn, mapping, direction, id)?;
    }
    Ok(())
}
