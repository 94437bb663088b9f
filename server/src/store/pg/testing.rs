//! A fresh PostgreSQL database per test, on the throw-away server `.ci/run` starts.
//!
//! `VIGIL_TEST_PG_URL` names the server (`postgres://USER@HOST:PORT`, optionally with a
//! maintenance database after a `/`); each test gets a database of its own under a random
//! name, so tests run in parallel and see nothing of each other. Without the variable a test
//! that needs PostgreSQL prints `SKIPPED` and passes locally, but fails under `CI=true`: a test
//! must never pass silently in CI.

use rand::RngCore;
use tokio_postgres::NoTls;

/// The variable naming the test server.
pub(crate) const URL_VAR: &str = "VIGIL_TEST_PG_URL";

/// The test server's URL, or `None` after printing why the test is skipped (a panic under CI).
pub(crate) fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{URL_VAR} is not set under CI=true: .ci/run starts a PostgreSQL and sets it")
        }
        _ => {
            eprintln!(
                "SKIPPED: no PostgreSQL for this test (set {URL_VAR}=postgres://USER@HOST:PORT, \
                 as .ci/run does)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `db`.
pub(crate) fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = match url[scheme_end..].find('/') {
        Some(i) => &url[..scheme_end + i],
        None => url,
    };
    format!("{base}/{db}")
}

/// Create a database with a random name on the server at `url`; its URL.
pub(crate) async fn fresh_database(url: &str) -> String {
    let mut id = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut id);
    let name = format!("vigil_test_{}", hex::encode(id));
    let maintenance = with_database(url, "postgres");
    let (client, conn) = tokio_postgres::connect(&maintenance, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {url}: {e}"));
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = task.await;
    with_database(url, &name)
}

#[test]
fn urls_get_their_database_replaced() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5/postgres", "x"),
        "postgres://u@127.0.0.1:5/x"
    );
    assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
}
