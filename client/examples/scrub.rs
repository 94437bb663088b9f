//! Scrub one file as `vigil report send --attach` would, and write the result: for checking the
//! scrubber against real phone photos, videos and documents with other tools (exiftool, ffprobe,
//! qpdf), which the test suite cannot ship.
//!
//! `cargo run --release -p vigil-client --example scrub -- IN OUT`; MP4/MOV files go through the
//! streaming scrubber for large videos (`vigil_client::large_video`) whatever their size.

use std::io::Read;
use vigil_client::large_video::{self, PartsReader, Plan};
use vigil_client::scrub::{self, FileKind, Outcome};

/// The streaming path, as `report send` takes it for a video over the in-memory bound.
fn stream_video(input: &str, output: &str) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(input)?;
    let len = file.metadata()?.len();
    let said = match large_video::plan(&mut file, len)? {
        Plan::Scrubbed { parts, removed } => {
            let mut out = std::fs::File::create(output)?;
            std::io::copy(&mut PartsReader::new(&mut file, parts), &mut out)?;
            let what: Vec<String> = removed
                .iter()
                .map(|r| format!("{} ({} bytes)", r.what.english(), r.bytes))
                .collect();
            return Ok(format!("streamed; removed: {}", what.join("; ")));
        }
        Plan::Clean => "streamed; nothing to remove".to_string(),
        Plan::NotScrubbed(w) => format!("streamed; not scrubbed: {}", w.english()),
    };
    std::fs::copy(input, output)?;
    Ok(said)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: scrub IN OUT");
        return std::process::ExitCode::from(2);
    };
    let mut head = [0u8; 64];
    let n = std::fs::File::open(input)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    if scrub::detect(&head[..n]) == FileKind::Mp4 {
        return match stream_video(input, output) {
            Ok(said) => {
                println!("{said}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {input}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (out, said) = match scrub::scrub(&bytes) {
        Ok(Outcome::Scrubbed { bytes, removed, .. }) => {
            let what: Vec<String> = removed
                .iter()
                .map(|r| format!("{} ({} bytes)", r.what.english(), r.bytes))
                .collect();
            (bytes, format!("removed: {}", what.join("; ")))
        }
        Ok(Outcome::Clean { kind }) => (bytes, format!("{kind:?}: nothing to remove")),
        Ok(Outcome::NotScrubbed { kind, warning }) => (
            bytes,
            format!("{kind:?}: not scrubbed: {}", warning.english()),
        ),
        Ok(Outcome::Unknown) => (bytes, "unknown type: sent as it is".to_string()),
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{said}");
    if let Err(e) = std::fs::write(output, out) {
        eprintln!("error: cannot write {output}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
