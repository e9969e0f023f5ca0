//! Keeps the WAL bounded under steady traffic without putting a checkpoint's bulk copy in a
//! request's path.
//!
//! Why two parties: SQLite can only start the WAL over from its beginning when, at the moment
//! the writer opens its next transaction, every frame has been copied back into the database
//! file. A checkpoint on another connection copies in the background while the writer goes on
//! appending, so under steady traffic it never catches the writer and the WAL grows without end
//! (about 22 KB per proxied call: 1.6 GB after 30 s of calls one at a time, with reads slowing
//! as the WAL index grows). So the background task does the bulk copy (PASSIVE, never blocking
//! the writer) and, once the WAL is past [`RESTART_FRAMES`], cues the writer thread, which runs
//! one more PASSIVE on the writer connection between two batches — only the frames written
//! since the background pass, plus the syncs — after which the next transaction restarts the
//! WAL, and the file is cut back to [`WAL_SIZE_LIMIT`] bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Row, SqlitePool};

use super::run_writer::WriterCue;

/// WAL frames (pages, 4 KiB each) past which the writer is asked to let the WAL restart.
pub(super) const RESTART_FRAMES: i64 = 4096;

/// What `PRAGMA journal_size_limit` cuts the WAL file back to when it restarts.
pub(super) const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How often the background task copies the WAL back into the database file.
const INTERVAL: Duration = Duration::from_millis(250);

/// Copies the WAL back into the database file every [`INTERVAL`], off the request path; ends
/// when the pool is closed or the writer is gone.
pub(super) async fn background(pool: SqlitePool, writer: WriterCue) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        // (busy, frames in the WAL, frames copied back)
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok(row) => {
                let frames: i64 = row.try_get(1).unwrap_or(0);
                if frames >= RESTART_FRAMES && !writer.finish_checkpoint() {
                    return;
                }
            }
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
        }
    }
}

/// How often (in commits) the writer checks that the WAL is not running away.
const BACKSTOP_COMMITS: u64 = 256;

/// The WAL size past which the writer finishes the checkpoint itself: twice what the
/// background task cues it at.
const BACKSTOP_BYTES: u64 = 2 * RESTART_FRAMES.unsigned_abs() * 4096;

/// The writer's guard for when the background task falls behind (starved of CPU, its cue
/// late): every [`BACKSTOP_COMMITS`] commits it looks at the WAL's size and, past
/// [`BACKSTOP_BYTES`], finishes the checkpoint itself between two commits.
#[derive(Debug)]
pub(super) struct Backstop {
    wal: PathBuf,
    commits: AtomicU64,
}

impl Backstop {
    /// For the database at `db`, whose WAL is `<db>-wal`.
    pub(super) fn new(db: &Path) -> Backstop {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Backstop {
            wal: wal.into(),
            commits: AtomicU64::new(0),
        }
    }

    /// Called by the writer after each commit, with the connection still held.
    pub(super) fn after_commit(&self, conn: &rusqlite::Connection) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % BACKSTOP_COMMITS != 0 {
            return;
        }
        if std::fs::metadata(&self.wal).map_or(0, |m| m.len()) > BACKSTOP_BYTES {
            finish(conn);
        }
    }
}

/// The writer's part, run between two batches when the background task cues it.
pub(super) fn finish(conn: &rusqlite::Connection) {
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((frames, copied)) if frames != copied => {
            // A reader still holds an older snapshot; the next round tries again.
            tracing::debug!(frames, copied, "WAL not fully checkpointed yet");
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
    }
}
