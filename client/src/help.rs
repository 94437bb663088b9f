//! `--help` in the user's language.
//!
//! clap takes help text from the doc comments in `crate::cli`. Before parsing, the command tree
//! is built (so clap's own `--help`, `--version` and `help` exist and global flags are copied into
//! every subcommand) and walked, and each text that has a catalogue message is replaced:
//! `vigil report send` looks up `help-report-send` (its `about`) and `help-report-send-after`
//! (the text after the options); its flag `--to` looks up `help-report-send-to`, then the shared
//! `help-arg-to` (for flags several commands have, like `--retry-for`). Global flags and clap's
//! own are `help-flag-json`, `help-flag-help` and the like. Texts without a message keep the doc
//! comment's English. Outside English, clap's headings ("Usage:", "Options:") come from the
//! catalogue too, and clap's `[env: ...]` and `[default: ...]` notes are left to the
//! translated text.

use crate::i18n::{self, Lang};
use clap::Command;
use i18n_embed::fluent::FluentLanguageLoader;

/// `cmd`, built, with its help text and that of every subcommand and argument from the
/// catalogue.
pub fn localize(mut cmd: Command) -> Command {
    cmd.build();
    localize_tree(cmd, "help", i18n::language())
}

fn localize_tree(mut cmd: Command, id: &str, lang: Lang) -> Command {
    let loader = i18n::loader_for(lang);
    if loader.has(id) {
        cmd = cmd.about(loader.get(id)).long_about(None::<&str>);
    }
    let after = format!("{id}-after");
    if loader.has(&after) {
        cmd = cmd
            .after_help(loader.get(&after))
            .after_long_help(None::<&str>);
    }
    let args: Vec<(String, bool)> = cmd
        .get_arguments()
        .map(|a| (a.get_id().to_string(), a.is_global_set()))
        .collect();
    for (arg, global) in args {
        let name = arg.replace('_', "-");
        let candidates = match global || arg == "help" || arg == "version" {
            true => vec![format!("help-flag-{name}")],
            false => vec![format!("{id}-{name}"), format!("help-arg-{name}")],
        };
        if let Some(text) = first_message(loader, &candidates) {
            let translated = lang != Lang::En;
            cmd = cmd.mut_arg(arg.as_str(), |a| {
                let (env, default) = (a.is_hide_env_set(), a.is_hide_default_value_set());
                a.help(text)
                    .long_help(None::<&str>)
                    .hide_env(translated || env)
                    .hide_default_value(translated || default)
            });
        }
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let sub_id = match name.as_str() {
            "help" => "help-flag-help-command".to_string(),
            _ => format!("{id}-{name}"),
        };
        cmd = cmd.mut_subcommand(name.as_str(), |s| localize_tree(s, &sub_id, lang));
    }
    if lang != Lang::En {
        let layout = template(&cmd, loader);
        cmd = cmd.help_template(layout);
    }
    cmd
}

fn first_message(loader: &FluentLanguageLoader, ids: &[String]) -> Option<String> {
    ids.iter()
        .find(|id| loader.has(id))
        .map(|id| loader.get(id))
}

/// clap's help layout with the headings from the catalogue, and only the sections `cmd` has.
fn template(cmd: &Command, loader: &FluentLanguageLoader) -> String {
    let mut sections = Vec::new();
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        sections.push(format!(
            "{}\n{{subcommands}}",
            loader.get("help-heading-commands")
        ));
    }
    if cmd.get_positionals().any(|a| !a.is_hide_set()) {
        sections.push(format!(
            "{}\n{{positionals}}",
            loader.get("help-heading-arguments")
        ));
    }
    if cmd
        .get_arguments()
        .any(|a| !a.is_positional() && !a.is_hide_set())
    {
        sections.push(format!(
            "{}\n{{options}}",
            loader.get("help-heading-options")
        ));
    }
    format!(
        "{{before-help}}{{about-with-newline}}\n{} {{usage}}\n\n{}{{after-help}}",
        loader.get("help-heading-usage"),
        sections.join("\n\n")
    )
}

/// A command line clap refused, in this run's language: clap's own messages are English, so
/// outside English the common mistakes (a missing or unknown argument or command, a bad value, two
/// flags that exclude each other) are told from the catalogue. `None` for the rest, which clap
/// prints itself. The `--json` error object keeps clap's English.
pub fn usage_error(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ErrorKind};
    if i18n::language() == Lang::En {
        return None;
    }
    let get = |k: ContextKind| e.get(k).map(|v| v.to_string());
    let problem = match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            crate::t!("usage-missing", args = get(ContextKind::InvalidArg)?)
        }
        ErrorKind::UnknownArgument => {
            crate::t!("usage-unknown-arg", arg = get(ContextKind::InvalidArg)?)
        }
        ErrorKind::InvalidSubcommand => crate::t!(
            "usage-unknown-command",
            command = get(ContextKind::InvalidSubcommand)?
        ),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => crate::t!(
            "usage-invalid-value",
            value = get(ContextKind::InvalidValue)?,
            arg = get(ContextKind::InvalidArg)?
        ),
        ErrorKind::ArgumentConflict => crate::t!(
            "usage-conflict",
            arg = get(ContextKind::InvalidArg)?,
            prior = get(ContextKind::PriorArg)?
        ),
        _ => return None,
    };
    let mut out = format!("{}: {problem}", crate::t!("error-prefix"));
    let suggestion = get(ContextKind::SuggestedArg)
        .or_else(|| get(ContextKind::SuggestedSubcommand))
        .or_else(|| get(ContextKind::SuggestedValue));
    if let Some(s) = suggestion {
        out.push_str(&format!(
            "\n\n  {}",
            crate::t!("usage-suggest", suggestion = s)
        ));
    }
    out.push_str(&format!("\n\n{}", crate::t!("usage-more")));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// In English the catalogue's help text is the doc comments' own: every command's help
    /// reads as it did before the catalogue.
    #[test]
    fn english_help_is_the_doc_comments() {
        let mut plain = crate::cli::Cli::command();
        plain.build();
        let english = localize_tree(plain.clone(), "help", Lang::En);
        fn compare(plain: &Command, english: &Command, path: &str) {
            assert_eq!(
                plain.clone().render_help().to_string(),
                english.clone().render_help().to_string(),
                "{path}"
            );
            for sub in plain.get_subcommands() {
                let name = sub.get_name();
                let other = english.find_subcommand(name).expect("same tree");
                compare(sub, other, &format!("{path} {name}"));
            }
        }
        compare(&plain, &english, "vigil");
    }

    /// Every command a reporter or an NGO uses has its help in Russian.
    #[test]
    fn the_commands_people_use_have_russian_help() {
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        let ru = i18n::loader_for(Lang::Ru);
        fn walk(c: &Command, id: &str, ru: &FluentLanguageLoader, missing: &mut Vec<String>) {
            if !ru.has(id) {
                missing.push(id.to_string());
            }
            for sub in c.get_subcommands() {
                let name = sub.get_name();
                if name != "help" && name != "age" && name != "demo" {
                    walk(sub, &format!("{id}-{name}"), ru, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&cmd, "help", ru, &mut missing);
        assert!(missing.is_empty(), "{missing:?}");
    }
}
