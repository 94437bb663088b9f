//! Exit codes. Scripts and the acceptance tests rely on these; never renumber.

/// Success.
pub const OK: u8 = 0;
/// The command failed; stderr says why.
pub const FAILED: u8 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: u8 = 2;
/// The relay could not be reached, or the link to it broke or stalled; work is kept (in the
/// outbox) for a later try.
pub const RELAY_UNREACHABLE: u8 = 3;
/// The relay's certificate does not match the pinned fingerprint: possible interception.
pub const RELAY_IDENTITY_MISMATCH: u8 = 4;
