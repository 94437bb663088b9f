//! A fresh database per test on the throw-away PostgreSQL `.ci/run` starts (`VIGIL_TEST_PG_URL`,
//! `postgres://USER@HOST:PORT[/DB]`). Without it a test prints `SKIPPED` and passes locally,
//! and fails under `CI=true`.

use rand::RngCore;
use tokio_postgres::NoTls;

/// The test server's URL, or `None` after printing why the test is skipped (a panic under CI).
pub fn server_url() -> Option<String> {
    match std::env::var("VIGIL_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("VIGIL_TEST_PG_URL is not set under CI=true: .ci/run starts a PostgreSQL and sets it")
        }
        _ => {
            eprintln!(
                "SKIPPED: no PostgreSQL for this test (set VIGIL_TEST_PG_URL=postgres://USER@HOST:PORT, \
                 as .ci/run does)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = match url[scheme_end..].find('/') {
        Some(i) => &url[..scheme_end + i],
        None => url,
    };
    format!("{base}/{db}")
}

/// A client of the database at `url` (its connection driven by a task).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    tokio::spawn(conn);
    client
}

/// A new database with a random name on the test server; its URL, or `None` when skipped.
pub async fn fresh_database() -> Option<String> {
    let server = server_url()?;
    let mut id = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut id);
    let name = format!("vigil_e2e_{}", hex::encode(id));
    connect(&with_database(&server, "postgres"))
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    Some(with_database(&server, &name))
}
