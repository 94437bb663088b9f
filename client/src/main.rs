//! The `vigil` program.

use clap::Parser;
use std::process::ExitCode;
use vigil_client::{cli::Cli, commands, exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            let code = vigil_client::exit_code_for(&err);
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::OK);
            }
            let line = format!("{err:#}").replace('\n', " ");
            eprintln!("error: {line}");
            if json {
                println!(
                    "{}",
                    serde_json::json!({"type": "error", "error": line, "exit_code": code})
                );
            }
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
