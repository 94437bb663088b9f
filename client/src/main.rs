//! The `vigil` program.

use std::process::ExitCode;
use vigil_client::failure::{Failure, Family};
use vigil_client::i18n::{self, Lang};
use vigil_client::{cli::Cli, commands, exit, t};

fn main() -> ExitCode {
    // The language first: clap's help text is already in it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    i18n::set_language(Lang::for_run(&args));
    let cli = match Cli::parse_localized(args) {
        Ok(c) => c,
        Err(e) => {
            match vigil_client::help::usage_error(&e) {
                Some(text) => eprintln!("{text}"),
                None => {
                    let _ = e.print();
                }
            }
            if !e.use_stderr() {
                return ExitCode::from(exit::OK); // --help, --version
            }
            if std::env::args_os().any(|a| a == "--json") {
                println!("{}", Failure::usage(&e.to_string()).to_json());
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    let json = cli.json;
    let family = Family::of(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}: {}",
                t!("error-prefix"),
                t!("runtime-failed", error = e.to_string())
            );
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::OK);
            }
            let failure = Failure::from_error(&err, family);
            // Shown through the report escaper: an error can quote a report's bad value (an
            // unknown `kind`), and the line must stay one line whatever it quotes.
            eprintln!(
                "{}: {}",
                t!("error-prefix"),
                vigil_client::display::line(&failure.shown)
            );
            if json {
                println!("{}", failure.to_json());
            }
            ExitCode::from(failure.exit_code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
