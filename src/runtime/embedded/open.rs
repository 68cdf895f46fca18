//! Opening a system's database: created on first use with one table per catalog table, and
//! loaded from the seed when there is one.

use super::codec::{self, quote_ident};
use super::error::Res;
use super::{id_field, seed, EmbeddedError, EmbeddedSystem};
use crate::schema::{Catalog, SystemKind};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

impl EmbeddedSystem {
    /// Opens (creating on first use) the database of a system; a new database is loaded from the seed.
    pub fn open(
        path: &Path,
        name: &str,
        kind: SystemKind,
        catalog: Arc<Catalog>,
        seed_path: Option<&Path>,
        integration_user: &str,
    ) -> Res<EmbeddedSystem> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Held until the database is open: a command started meanwhile waits for the seed load
        // (and the tables) instead of seeing, or removing, half of it.
        let _first_use = first_use_lock(path)?;
        if !path.exists() {
            if let Some(seed) = seed_path {
                Self::load_seed(path, name, kind, catalog.clone(), seed, integration_user)?;
            }
        }
        let system = Self::open_file(path, name, kind, catalog, integration_user)?;
        system.provision_organization()?;
        Ok(system)
    }

    /// Loads the seed aside and renames it into place: a stopped load leaves nothing half-done.
    fn load_seed(
        path: &Path,
        name: &str,
        kind: SystemKind,
        catalog: Arc<Catalog>,
        seed: &Path,
        integration_user: &str,
    ) -> Res<()> {
        let loading = path.with_extension("loading");
        for stale in [
            &loading,
            &loading.with_extension("loading-wal"),
            &loading.with_extension("loading-shm"),
        ] {
            let _ = std::fs::remove_file(stale);
        }
        let system = Self::open_file(&loading, name, kind, catalog, integration_user)?;
        let loaded = seed::load(&system, seed)
            .map_err(EmbeddedError::from)
            .and_then(|()| system.checkpoint());
        drop(system);
        if let Err(e) = loaded {
            let _ = std::fs::remove_file(&loading);
            return Err(e);
        }
        std::fs::rename(&loading, path).map_err(|source| EmbeddedError::PlaceSeed {
            path: path.to_path_buf(),
            source,
        })
    }

    fn open_file(
        path: &Path,
        name: &str,
        kind: SystemKind,
        catalog: Arc<Catalog>,
        integration_user: &str,
    ) -> Res<EmbeddedSystem> {
        let conn = Connection::open(path).map_err(|source| EmbeddedError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // The timeout first: switching to WAL waits for other connections too.
        conn.execute_batch(
            "PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        )
        .map_err(|source| EmbeddedError::Configure {
            path: path.to_path_buf(),
            source,
        })?;
        conn.set_prepared_statement_cache_capacity(256);
        let system = EmbeddedSystem {
            name: name.into(),
            kind,
            catalog,
            conn: Mutex::new(conn),
            added_options: Mutex::new(Default::default()),
            integration_user: integration_user.into(),
        };
        system.create_tables()?;
        system.load_added_options()?;
        Ok(system)
    }

    /// Writes the write-ahead log into the database file, so the file alone holds everything.
    fn checkpoint(&self) -> Res<()> {
        self.lock()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")?;
        Ok(())
    }

    fn create_tables(&self) -> Res<()> {
        let mut ddl = String::from(
            "CREATE TABLE IF NOT EXISTS \"__stamp\" (last TEXT NOT NULL);\n\
             CREATE TABLE IF NOT EXISTS \"__deleted\" (tbl TEXT NOT NULL, id TEXT NOT NULL, deleted_on TEXT NOT NULL, deleted_by TEXT);\n\
             CREATE INDEX IF NOT EXISTS \"__deleted_on\" ON \"__deleted\"(tbl, deleted_on);\n",
        );
        for (tname, table) in &self.catalog.tables {
            ddl.push_str(&self.table_ddl(tname, table));
        }
        self.lock().execute_batch(&ddl)?;
        Ok(())
    }

    /// A catalog table, its change index, and Business Central's unique primary key.
    fn table_ddl(&self, tname: &str, table: &crate::schema::Table) -> String {
        let id = id_field(self.kind, table);
        let t = quote_ident(tname);
        let mut cols = vec![format!("{} TEXT PRIMARY KEY", quote_ident(&id))];
        for (fname, field) in &table.fields {
            if *fname != id {
                cols.push(format!(
                    "{} {}",
                    quote_ident(fname),
                    codec::column_type(self.kind, field)
                ));
            }
        }
        cols.push("\"__modified_on\" TEXT NOT NULL".into());
        cols.push("\"__modified_by\" TEXT".into());
        let mut ddl = format!("CREATE TABLE IF NOT EXISTS {t} ({});\n", cols.join(", "));
        ddl.push_str(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {t}(\"__modified_on\", {});\n",
            quote_ident(&format!("{tname}__changes")),
            quote_ident(&id)
        ));
        // Business Central's primary key is unique, whatever the SystemId.
        if table.key.iter().all(|k| *k != id) && !table.key.is_empty() {
            let cols: Vec<String> = table.key.iter().map(|k| quote_ident(k)).collect();
            ddl.push_str(&format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t}({});\n",
                quote_ident(&format!("{tname}__pk")),
                cols.join(", ")
            ));
        }
        ddl
    }
}

/// Waits for, then takes, the lock on `<database>.open-lock` (released when dropped).
fn first_use_lock(path: &Path) -> Res<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".open-lock");
    let lock = std::path::PathBuf::from(name);
    let fail = |source| EmbeddedError::Lock {
        path: lock.clone(),
        source,
    };
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(fail)?;
    file.lock().map_err(fail)?;
    Ok(file)
}
