//! `--help` in the user's language.
//!
//! clap takes help text from the doc comments in `crate::cli`, which are English. Before parsing,
//! the command tree is walked and each text that has a catalogue message is replaced: a command
//! `vigil report send` looks up `help-report-send` (its one-line `about`),
//! `help-report-send-long` (the longer text shown by `--help`, if any) and
//! `help-report-send-after` (the text after the options); its flag `--to` looks up
//! `help-report-send-to`. Global flags are looked up once, as `help-flag-json` and the like. Texts
//! without a message keep their English.

use crate::i18n::{self, Lang};
use clap::Command;

/// `cmd` with its help text, and that of every subcommand and argument, from the catalogue.
pub fn localize(cmd: Command) -> Command {
    let lang = i18n::language();
    localize_tree(cmd, "help", lang)
}

fn localize_tree(mut cmd: Command, id: &str, lang: Lang) -> Command {
    let loader = i18n::loader_for(lang);
    if loader.has(id) {
        cmd = cmd.about(loader.get(id));
    }
    let long = format!("{id}-long");
    if loader.has(&long) {
        cmd = cmd.long_about(loader.get(&long));
    } else if loader.has(id) {
        // clap shows `long_about` before `about` under --help: drop the English one.
        cmd = cmd.long_about(None::<&str>);
    }
    let after = format!("{id}-after");
    if loader.has(&after) {
        cmd = cmd.after_help(loader.get(&after));
    }
    let args: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for arg in args {
        let global = cmd
            .get_arguments()
            .find(|a| a.get_id() == arg.as_str())
            .is_some_and(|a| a.is_global_set());
        let arg_id = match global {
            true => format!("help-flag-{}", arg.replace('_', "-")),
            false => format!("{id}-{}", arg.replace('_', "-")),
        };
        if loader.has(&arg_id) {
            let text = loader.get(&arg_id);
            cmd = cmd.mut_arg(arg.as_str(), |a| {
                a.help(text.clone()).long_help(None::<&str>)
            });
        }
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let sub_id = format!("{id}-{name}");
        cmd = cmd.mut_subcommand(name.as_str(), |s| localize_tree(s, &sub_id, lang));
    }
    cmd
}
