//! The PostgreSQL schema and its versioned migrations, applied when a relay starts.
//!
//! Every relay sharing a database runs [`migrate`] at start; one transaction under an advisory
//! lock applies whatever migrations the database lacks, so relays starting together migrate it
//! once, and a crash mid-way leaves the previous version whole. A database migrated by a newer
//! relay (a version this one does not know) is refused: an older relay would misread tables it
//! does not know about, and silently lose or duplicate reports.
//!
//! Tables (version 1), all ids as `bytea`, all counts and times as `bigint`:
//!
//! * `mailboxes`: id, public key, and the counters the quota is checked against (items and bytes
//!   waiting, sealed in armed alerts, held by referenced blobs); since version 2 also when it
//!   is forgotten (the start of a UTC day; `NULL` for never) and its prekey bundle. A conditional `UPDATE` of this
//!   row is how a deposit, an arm or a release takes quota: the row lock orders relays racing
//!   for the same mailbox, and the condition keeps the mailbox within its quota.
//! * `deposits`: one row per remembered deposit (mailbox, deposit id), its place (small or
//!   large, for fetch order), length, coarse receive time, whether it was acknowledged (the
//!   tombstone that keeps the id remembered until expiry), its release note and its blob list.
//!   The primary key makes a deposit idempotent whatever relay takes it.
//! * `envelope_chunks`: the envelope's bytes in rows of at most [`super::CHUNK`] bytes, keyed
//!   by offset, deleted with the acknowledgement (or with the deposit row, by cascade).
//! * `alerts`: armed check-in alerts, each the sled store's encoding (times, then the Arm
//!   request's body as the wire encodes it), and the deadline as a column.
//! * `blobs` and `blob_chunks`: attachment blobs (total, durable length, last write, references)
//!   and their bytes in rows of at most [`super::CHUNK`] bytes.

use super::PgError;
use deadpool_postgres::Object;

/// The schema version this relay writes; the index of the last entry of [`MIGRATIONS`] plus one.
pub(crate) const VERSION: i32 = MIGRATIONS.len() as i32;

/// `(class, object)` of the advisory lock held while migrating.
const MIGRATION_LOCK: (i32, i32) = (super::LOCK_CLASS, 0);

/// Each migration, in order; entry `i` takes the schema from version `i` to `i + 1`. Never edit
/// one that was released: add the next.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE mailboxes (
        id bytea PRIMARY KEY,
        public_key bytea NOT NULL,
        items bigint NOT NULL DEFAULT 0 CHECK (items >= 0),
        bytes bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
        sealed_items bigint NOT NULL DEFAULT 0 CHECK (sealed_items >= 0),
        sealed_bytes bigint NOT NULL DEFAULT 0 CHECK (sealed_bytes >= 0),
        blob_bytes bigint NOT NULL DEFAULT 0 CHECK (blob_bytes >= 0)
    );
    CREATE TABLE deposits (
        mailbox bytea NOT NULL REFERENCES mailboxes (id),
        deposit_id bytea NOT NULL,
        place smallint NOT NULL,
        len bigint NOT NULL,
        time bigint NOT NULL,
        acked boolean NOT NULL DEFAULT false,
        note bytea,
        blobs bytea,
        PRIMARY KEY (mailbox, deposit_id)
    );
    CREATE INDEX deposits_fetch ON deposits (mailbox, place, deposit_id) WHERE NOT acked;
    CREATE INDEX deposits_time ON deposits (time);
    CREATE TABLE envelope_chunks (
        mailbox bytea NOT NULL,
        deposit_id bytea NOT NULL,
        off bigint NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (mailbox, deposit_id, off),
        FOREIGN KEY (mailbox, deposit_id) REFERENCES deposits ON DELETE CASCADE
    );
    CREATE TABLE alerts (
        id bytea PRIMARY KEY,
        deadline bigint NOT NULL,
        value bytea NOT NULL
    );
    CREATE TABLE blobs (
        id bytea PRIMARY KEY,
        total bigint NOT NULL,
        have bigint NOT NULL,
        touched bigint NOT NULL,
        refs bigint NOT NULL DEFAULT 0 CHECK (refs >= 0),
        CHECK (have <= total)
    );
    CREATE INDEX blobs_unreferenced ON blobs (touched) WHERE refs = 0;
    CREATE TABLE blob_chunks (
        blob bytea NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
        off bigint NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (blob, off)
    );",
    // 2: mailbox lifetimes (reply mailboxes, forgotten when due) and prekey bundles.
    "ALTER TABLE mailboxes ADD COLUMN expires bigint, ADD COLUMN prekey bytea;
    CREATE INDEX mailboxes_expiring ON mailboxes (expires) WHERE expires IS NOT NULL;",
];

/// Bring the database to [`VERSION`], or refuse one newer than that.
pub(crate) async fn migrate(client: &mut Object) -> Result<(), PgError> {
    let fail = |e: tokio_postgres::Error| PgError::Migrate(super::describe(&e));
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )
    .await
    .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS vigil_schema (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            version integer NOT NULL
        )",
    )
    .await
    .map_err(fail)?;
    let found: i32 = match tx
        .query_opt("SELECT version FROM vigil_schema", &[])
        .await
        .map_err(fail)?
    {
        Some(row) => row.try_get(0).map_err(fail)?,
        None => 0,
    };
    if found > VERSION {
        return Err(PgError::SchemaTooNew {
            found,
            known: VERSION,
        });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for (i, m) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.batch_execute(m).await.map_err(fail)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    tx.execute(
        "INSERT INTO vigil_schema (version) VALUES ($1)
         ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
        &[&VERSION],
    )
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)
}
