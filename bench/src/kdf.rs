//! How long unlocking a Vigil home takes at each scrypt work factor: the figure behind
//! `vigil_core::vault::DEFAULT_WORK_FACTOR`. Unlocking is one scrypt run (N = 2^wf, r = 8,
//! so 2^wf KiB of memory) plus one tiny age decryption; an attacker with the key file pays the
//! same scrypt run per guess.

use crate::report::Report;
use anyhow::{anyhow, Result};
use rand::rngs::OsRng;
use secrecy::SecretString;
use std::time::Instant;
use vigil_core::vault::VaultKey;

/// Unlock time in milliseconds at each work factor of `factors`, best of `reps`.
pub fn run(factors: std::ops::RangeInclusive<u8>, reps: usize, out: &mut Report) -> Result<()> {
    let pass = SecretString::from("a passphrase of several words".to_string());
    let key = VaultKey::generate(&mut OsRng);
    for wf in factors {
        let file = key.lock(&pass, wf, &mut OsRng)?;
        let mut best = f64::INFINITY;
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            VaultKey::unlock(&file, &pass).map_err(|e| anyhow!("unlock at {wf}: {e}"))?;
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        out.set(&format!("vault_unlock_ms_wf{wf}"), best);
    }
    Ok(())
}
