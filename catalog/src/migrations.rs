//! The catalog's schema, as an ordered list of migrations tracked in SQLite's `user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::CatalogError;

/// Each entry moves the schema from version `index` to `index + 1`. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: runs (the journal), per-hook results, backups.
    r#"
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL,
        version      TEXT NOT NULL,
        project      TEXT,
        status       TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
        phase        TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        duration_ms  INTEGER,
        error        TEXT,
        pid          INTEGER NOT NULL,
        boot_id      TEXT,
        storage_dir  TEXT NOT NULL,
        staging_dir  TEXT NOT NULL
    );
    CREATE TABLE hook_results (
        run_id       INTEGER NOT NULL REFERENCES runs(id),
        seq          INTEGER NOT NULL,
        name         TEXT NOT NULL,
        hook_type    TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'continued', 'skipped')),
        error        TEXT,
        started_at   TEXT,
        duration_ms  INTEGER,
        outputs      TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE backups (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id       INTEGER REFERENCES runs(id),
        type         TEXT NOT NULL,
        version      TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
        error        TEXT,
        path         TEXT,
        size         INTEGER,
        sha256       TEXT,
        file_count   INTEGER,
        entry_count  INTEGER,
        bytes        INTEGER,
        compression  TEXT,
        created_at   TEXT NOT NULL,
        duration_ms  INTEGER
    );
    CREATE INDEX backups_by_created ON backups(created_at);
    "#,
    // 2: the containers a run stopped (the journal `recover` works from), and where each archived tree came from.
    r#"
    CREATE TABLE services (
        run_id          INTEGER NOT NULL REFERENCES runs(id),
        container_id    TEXT NOT NULL,
        container_name  TEXT NOT NULL,
        service         TEXT NOT NULL,
        start_layer     INTEGER NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('stopping', 'stopped', 'started', 'failed')),
        stopped_at      TEXT,
        started_at      TEXT,
        downtime_ms     INTEGER,
        error           TEXT,
        PRIMARY KEY (run_id, container_id)
    );
    CREATE TABLE backup_sources (
        backup_id     INTEGER NOT NULL REFERENCES backups(id),
        kind          TEXT NOT NULL CHECK (kind IN ('path', 'volume', 'bind', 'artifacts')),
        name          TEXT NOT NULL,
        archive_path  TEXT NOT NULL,
        host_path     TEXT NOT NULL
    );
    "#,
    // 3: verification results, the two-step deletion mark, and restores.
    r#"
    ALTER TABLE backups ADD COLUMN verified_at TEXT;
    ALTER TABLE backups ADD COLUMN verify_ok INTEGER;
    ALTER TABLE backups ADD COLUMN verify_error TEXT;
    ALTER TABLE backups ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE restores (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        backup_id    INTEGER NOT NULL,
        run_id       INTEGER REFERENCES runs(id),
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        status       TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
        only_paths   TEXT NOT NULL DEFAULT '[]',
        error        TEXT
    );
    "#,
    // 4: a note on a restore that completed although its run did not finish (it died after its swap).
    r#"
    ALTER TABLE restores ADD COLUMN note TEXT;
    "#,
    // 5: what ran when a pre-upgrade backup was taken (each container as Docker reported it, the image tag that
    // keeps its image, the Compose files archived under `compose/`), and the upgrades themselves.
    r#"
    CREATE TABLE backup_sources_5 (
        backup_id     INTEGER NOT NULL REFERENCES backups(id),
        kind          TEXT NOT NULL CHECK (kind IN ('path', 'volume', 'bind', 'artifacts', 'compose')),
        name          TEXT NOT NULL,
        archive_path  TEXT NOT NULL,
        host_path     TEXT NOT NULL
    );
    INSERT INTO backup_sources_5 (rowid, backup_id, kind, name, archive_path, host_path)
        SELECT rowid, backup_id, kind, name, archive_path, host_path FROM backup_sources;
    DROP TABLE backup_sources;
    ALTER TABLE backup_sources_5 RENAME TO backup_sources;
    CREATE TABLE backup_containers (
        backup_id     INTEGER NOT NULL REFERENCES backups(id),
        name          TEXT NOT NULL,
        service       TEXT NOT NULL,
        container_id  TEXT NOT NULL,
        image         TEXT NOT NULL,
        image_id      TEXT NOT NULL,
        repo_digests  TEXT NOT NULL DEFAULT '[]',
        running       INTEGER NOT NULL,
        start_layer   INTEGER NOT NULL,
        rollback_tag  TEXT,
        inspect       TEXT NOT NULL,
        PRIMARY KEY (backup_id, name)
    );
    CREATE TABLE backup_compose_files (
        backup_id     INTEGER NOT NULL REFERENCES backups(id),
        archive_path  TEXT NOT NULL,
        host_path     TEXT NOT NULL,
        PRIMARY KEY (backup_id, archive_path)
    );
    CREATE TABLE upgrades (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        project          TEXT,
        from_version     TEXT NOT NULL,
        to_version       TEXT NOT NULL,
        command          TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('running', 'upgraded', 'rolled-back', 'failed',
                                                         'rollback-failed', 'interrupted')),
        phase            TEXT NOT NULL,
        backup_id        INTEGER,
        backup_run_id    INTEGER,
        rollback_run_id  INTEGER,
        started_at       TEXT NOT NULL,
        finished_at      TEXT,
        pid              INTEGER NOT NULL,
        error            TEXT,
        phases           TEXT NOT NULL DEFAULT '{}',
        downtime         TEXT NOT NULL DEFAULT '{}',
        output_tail      TEXT NOT NULL DEFAULT ''
    );
    "#,
    // 6: off-site copies: one row per backup and remote, written once the object is complete and checked; a
    // backup's local archive may be pruned while a remote keeps it.
    r#"
    CREATE TABLE copies (
        backup_id    INTEGER NOT NULL REFERENCES backups(id),
        location     TEXT NOT NULL,
        key          TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        encrypted    INTEGER NOT NULL,
        uploaded_at  TEXT NOT NULL,
        duration_ms  INTEGER NOT NULL,
        verified_at  TEXT,
        verify_ok    INTEGER,
        verify_error TEXT,
        PRIMARY KEY (backup_id, location)
    );
    ALTER TABLE backups ADD COLUMN local_removed_at TEXT;
    "#,
    // 7: indexes for the lookups of one backup or run, so that `show` and every run's journal cost the same on a
    // catalog of 100,000 backups as on one of ten (a row's trees, a run's backup, the runs still `running`).
    r#"
    CREATE INDEX backup_sources_by_backup ON backup_sources(backup_id);
    CREATE INDEX backups_by_run ON backups(run_id);
    CREATE INDEX runs_by_status ON runs(status);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations the file has not seen, each in its own transaction. Each transaction takes the write
/// lock first (`BEGIN IMMEDIATE`) and reads the version under it, so processes opening a new catalog at once apply
/// every migration exactly once: a second one waits, then finds it applied.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), CatalogError> {
    let sqlite = |source| CatalogError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite)?;
        if found > SCHEMA_VERSION {
            return Err(CatalogError::TooNew {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql).map_err(sqlite)?;
        tx.pragma_update(None, "user_version", found + 1).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_opening_a_new_catalog_at_once_each_find_it_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || crate::Catalog::open(&path).map(drop))
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
