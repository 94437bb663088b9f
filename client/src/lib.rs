//! The `vigil` client: reporter and NGO commands, the QUIC relay client, and local state.
#![forbid(unsafe_code)]

pub mod age_cmd;
pub mod age_parallel;
pub mod agent;
pub mod attach;
pub mod cli;
pub mod commands;
pub mod congestion;
pub mod display;
pub mod exit;
pub mod failure;
pub mod help;
pub mod home;
pub mod i18n;
pub mod i18n_errors;
pub mod large_video;
pub mod output;
pub mod progress;
pub mod relay;
pub mod retry;
pub mod scrub;
pub mod state;
pub mod unlock;
pub mod vault;

pub use failure::exit_code_for;
