//! Versioned schema of the state store. Append new steps; never edit a released one.

pub const MIGRATIONS: &[&str] = &[
    // 1: couplings, watermarks, runs, failures.
    "CREATE TABLE couplings (
        mapping TEXT NOT NULL,
        left_id TEXT NOT NULL,
        right_id TEXT NOT NULL,
        left_ref TEXT,
        right_ref TEXT,
        left_stamp TEXT,
        right_stamp TEXT,
        skipped INTEGER NOT NULL DEFAULT 0,
        pending INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (mapping, left_id),
        UNIQUE (mapping, right_id)
     );
     CREATE INDEX couplings_left_ref ON couplings(mapping, left_ref);
     CREATE INDEX couplings_right_ref ON couplings(mapping, right_ref);
     CREATE TABLE watermarks (
        mapping TEXT NOT NULL,
        side TEXT NOT NULL,
        modified_on TEXT NOT NULL,
        id TEXT NOT NULL,
        deleted_since TEXT,
        PRIMARY KEY (mapping, side)
     );
     CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT,
        status TEXT NOT NULL,
        full INTEGER NOT NULL,
        dry_run INTEGER NOT NULL
     );
     CREATE TABLE run_counts (
        run_id INTEGER NOT NULL,
        mapping TEXT NOT NULL,
        direction TEXT NOT NULL,
        inserted INTEGER NOT NULL DEFAULT 0,
        modified INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        unchanged INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        coupled INTEGER NOT NULL DEFAULT 0,
        conflicts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, mapping, direction)
     );
     CREATE TABLE failures (
        mapping TEXT NOT NULL,
        direction TEXT NOT NULL,
        source_id TEXT NOT NULL,
        target_id TEXT,
        message TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        run_id INTEGER,
        PRIMARY KEY (mapping, direction, source_id)
     );
     CREATE TABLE patches (
        mapping TEXT NOT NULL,
        direction TEXT NOT NULL,
        source_id TEXT NOT NULL,
        PRIMARY KEY (mapping, direction, source_id)
     );",
    // 2: finding interrupted creates without scanning every coupling.
    "CREATE INDEX couplings_pending ON couplings(mapping) WHERE pending = 1;",
    // 3: creates in flight, one row per written batch: [[source id, target id], ...]; written
    // before the records, removed once they are coupled.
    "CREATE TABLE pending_creates (
        id INTEGER PRIMARY KEY,
        mapping TEXT NOT NULL,
        direction TEXT NOT NULL,
        pairs TEXT NOT NULL
     );
     CREATE INDEX pending_creates_mapping ON pending_creates(mapping);",
    // 4: records waiting for their parent (`[parent]`), and the extra target records of a
    // `split` (one source record, several target records), numbered from 1.
    "CREATE TABLE held (
        mapping TEXT NOT NULL,
        direction TEXT NOT NULL,
        source_id TEXT NOT NULL,
        via TEXT NOT NULL,
        parent_ref TEXT NOT NULL,
        PRIMARY KEY (mapping, direction, source_id)
     );
     CREATE TABLE parts (
        mapping TEXT NOT NULL,
        source_id TEXT NOT NULL,
        part INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        pending INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (mapping, source_id, part)
     );",
    // 5: why a record failed, as a kind the engine decides on. Failures recorded before are
    // `unknown`, except update conflicts, whose message always said so.
    "ALTER TABLE failures ADD COLUMN kind TEXT NOT NULL DEFAULT 'unknown';
     UPDATE failures SET kind = 'update-conflict' WHERE message LIKE 'update conflict%';",
    // 6: the mappings a `--full` run has not finished yet (killed, stopped, failed), with the
    // run: the next run takes them up as full, and only them.
    "CREATE TABLE full_pending (
        mapping TEXT PRIMARY KEY,
        run INTEGER NOT NULL
     );",
];
