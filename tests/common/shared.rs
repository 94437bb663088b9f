//! `../shared/` beside the checkout: age test vectors and fixture reports that are not part of
//! this repository. A test that needs them must never pass silently without them: under CI
//! (`CI=true`) a missing directory fails the test; elsewhere the test prints a visible
//! `SKIPPED: ...` line (past the test harness's output capture) and skips that part.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The `shared` directory beside the workspace.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// `../shared/<rel>` if it is a directory. If not: a panic under `CI=true`, else a `SKIPPED`
/// line naming `what` and `None`.
pub fn dir(rel: &str, what: &str) -> Option<PathBuf> {
    require(root().join(rel), what, std::env::var("CI").ok().as_deref())
}

/// [`dir`] with the value of `CI` given, so that its policy can be tested.
pub fn require(path: PathBuf, what: &str, ci: Option<&str>) -> Option<PathBuf> {
    if path.is_dir() {
        return Some(path);
    }
    let line = format!("SKIPPED: {what} ({} is absent)", path.display());
    if ci == Some("true") {
        panic!("{line}; under CI=true the shared vectors and fixtures must be present");
    }
    // Straight to stderr: the harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "{line}");
    None
}
