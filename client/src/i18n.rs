//! The language of what a person reads: every prompt, result line, warning, error and piece of
//! help text comes from a Fluent catalogue (`client/i18n/LANG/vigil.ftl`), English or Russian.
//!
//! The language is chosen once per run, before the command line is parsed (the help text is
//! translated too): `--lang` wins, then `VIGIL_LANG`, then the POSIX locale variables `LC_ALL`,
//! `LC_MESSAGES` and `LANG`, the first that is set and not empty. A language Vigil has no
//! catalogue for, and the `C`/`POSIX` locales, give English.
//!
//! JSON output never goes through here: scripts match on its words, so they stay the same in
//! every language. An error therefore carries two renderings ([`Localized`]): English for the
//! `--json` error object, the user's language for the line on stderr.

use i18n_embed::fluent::FluentLanguageLoader;
use i18n_embed::unic_langid::LanguageIdentifier;
use i18n_embed::LanguageLoader;
use rust_embed::RustEmbed;
use std::sync::OnceLock;

/// The catalogues, compiled into the program: a reporter's phone has no install step.
#[derive(RustEmbed)]
#[folder = "i18n/"]
struct Catalogues;

/// A language Vigil speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English, also the fallback for any message a catalogue lacks.
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// Every language with a catalogue.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    /// The language a locale name or tag asks for: `ru`, `ru_RU.UTF-8`, `ru-RU`, `ru_RU@latin`,
    /// `RU`. `None` for a language without a catalogue (and for `C` and `POSIX`, which callers
    /// treat as English).
    pub fn parse(tag: &str) -> Option<Lang> {
        let lang = tag
            .trim()
            .split(['_', '-', '.', '@'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match lang.as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// The language the environment asks for, `var` reading a variable: `VIGIL_LANG` if set,
    /// else the first non-empty of `LC_ALL`, `LC_MESSAGES`, `LANG` (as POSIX orders them). An
    /// unknown language there means English, not a look further down the list: a person who set
    /// `LC_ALL=de_DE.UTF-8` did not ask for the `LANG` behind it.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Lang {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(l) = set("VIGIL_LANG").and_then(|v| Lang::parse(&v)) {
            return l;
        }
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|name| set(name))
            .and_then(|v| Lang::parse(&v))
            .unwrap_or(Lang::En)
    }

    /// The language for this run: `--lang` on the command line (`--lang ru` or `--lang=ru`, read
    /// before clap parses anything, so that the help text is already translated), else
    /// [`Lang::from_env`].
    pub fn for_run(args: &[std::ffi::OsString]) -> Lang {
        lang_flag(args)
            .map(|v| Lang::parse(&v).unwrap_or(Lang::En))
            .unwrap_or_else(|| Lang::from_env(|n| std::env::var(n).ok()))
    }

    /// The catalogue's directory name.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }
}

/// The value of the last `--lang` before a `--` (clap takes the last of a repeated flag).
fn lang_flag(args: &[std::ffi::OsString]) -> Option<String> {
    let mut found = None;
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--lang" {
            found = it.next().map(|v| v.into_owned());
        } else if let Some(v) = a.strip_prefix("--lang=") {
            found = Some(v.to_string());
        }
    }
    found
}

static CHOSEN: OnceLock<Lang> = OnceLock::new();

/// Choose the language for the rest of the run. Only the first call counts; without one
/// (library use, unit tests) the language is English.
pub fn set_language(lang: Lang) {
    let _ = CHOSEN.set(lang);
}

/// The language of this run.
pub fn language() -> Lang {
    CHOSEN.get().copied().unwrap_or(Lang::En)
}

/// The catalogue loader for `lang` (with English behind it for anything missing).
pub fn loader_for(lang: Lang) -> &'static FluentLanguageLoader {
    static LOADERS: [OnceLock<FluentLanguageLoader>; 2] = [OnceLock::new(), OnceLock::new()];
    LOADERS[lang as usize].get_or_init(|| {
        let en: LanguageIdentifier = "en".parse().expect("a valid language tag");
        let loader = FluentLanguageLoader::new("vigil", en.clone());
        let mut wanted = vec![en];
        if lang != Lang::En {
            wanted.insert(0, lang.code().parse().expect("a valid language tag"));
        }
        // The catalogues are compiled in and checked by the tests below, so this cannot fail
        // on a user's machine; if it ever did, messages would show their ids, not vanish.
        let _ = loader.load_languages(&Catalogues, &wanted);
        // No Unicode isolation marks around arguments: they would reach terminals and log files
        // as invisible characters, and the arguments here are names, numbers and paths.
        loader.set_use_isolating(false);
        loader
    })
}

/// The loader for this run's language.
pub fn loader() -> &'static FluentLanguageLoader {
    loader_for(language())
}

/// The English loader, for text that must not depend on the language (the `--json` error).
pub fn english() -> &'static FluentLanguageLoader {
    loader_for(Lang::En)
}

/// A catalogue message in this run's language: `t!("report-queued", n = 2)`. The message id and
/// argument names are checked against the English catalogue when the program is compiled.
#[macro_export]
macro_rules! t {
    ($($arg:tt)*) => {
        i18n_embed_fl::fl!($crate::i18n::loader(), $($arg)*)
    };
}

/// An error message in both renderings, [`Localized`]: `bail!(t_err!("send-no-file"))`.
#[macro_export]
macro_rules! t_err {
    ($($arg:tt)*) => {
        $crate::i18n::Localized {
            en: i18n_embed_fl::fl!($crate::i18n::english(), $($arg)*),
            local: i18n_embed_fl::fl!($crate::i18n::loader(), $($arg)*),
            kind: None,
            complete: false,
        }
    };
}

/// A message by an id known only at run time (advice chosen by a `match`), in `lang`. The
/// tests check that every id passed here exists.
pub fn by_id(lang: Lang, id: &str) -> String {
    loader_for(lang).get(id)
}

/// An error whose message comes from the catalogue. It displays in English (what `--json` and
/// logs carry); [`crate::failure`] shows `local` to the person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{en}")]
pub struct Localized {
    /// The English message.
    pub en: String,
    /// The message in this run's language.
    pub local: String,
    /// The error kind for `--json` (`not_found`...), when it is not the default `failed`.
    pub kind: Option<&'static str>,
    /// Given as context, the message says all the person needs: the (English, technical)
    /// causes below it are left out of the line on stderr. They stay in the JSON error.
    pub complete: bool,
}

impl Localized {
    /// The same message, saying all there is to say as a context ([`Localized::complete`]).
    pub fn complete(self) -> Self {
        Localized {
            complete: true,
            ..self
        }
    }

    /// The same message, of kind `kind` (a stable word listed in docs/cli.md).
    pub fn kind(self, kind: &'static str) -> Self {
        Self {
            kind: Some(kind),
            ..self
        }
    }

    /// The same message, of kind `not_found`.
    pub fn not_found(self) -> Self {
        Localized {
            kind: Some("not_found"),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use std::ffi::OsString;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn locale_names_are_read_as_posix_writes_them() {
        for ru in [
            "ru",
            "RU",
            "ru_RU",
            "ru_RU.UTF-8",
            "ru-RU",
            "ru_RU@latin",
            "ru_UA.KOI8-U",
        ] {
            assert_eq!(Lang::parse(ru), Some(Lang::Ru), "{ru}");
        }
        for en in ["en", "en_US.UTF-8", "en_GB", "EN"] {
            assert_eq!(Lang::parse(en), Some(Lang::En), "{en}");
        }
        for none in ["", "C", "POSIX", "C.UTF-8", "de_DE.UTF-8", "rus", "r"] {
            assert_eq!(Lang::parse(none), None, "{none}");
        }
    }

    #[test]
    fn the_first_non_empty_locale_variable_decides() {
        assert_eq!(Lang::from_env(env(&[])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LANG", "ru_RU.UTF-8")])), Lang::Ru);
        assert_eq!(
            Lang::from_env(env(&[
                ("LANG", "ru_RU.UTF-8"),
                ("LC_MESSAGES", "en_US.UTF-8")
            ])),
            Lang::En
        );
        assert_eq!(
            Lang::from_env(env(&[("LANG", "en_US.UTF-8"), ("LC_ALL", "ru_RU.UTF-8")])),
            Lang::Ru
        );
        // Empty means unset.
        assert_eq!(
            Lang::from_env(env(&[("LC_ALL", ""), ("LC_MESSAGES", ""), ("LANG", "ru")])),
            Lang::Ru
        );
        // C and unknown languages are English, without looking further down.
        assert_eq!(
            Lang::from_env(env(&[("LC_ALL", "C"), ("LANG", "ru_RU.UTF-8")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_env(env(&[("LC_MESSAGES", "de_DE"), ("LANG", "ru_RU.UTF-8")])),
            Lang::En
        );
        // VIGIL_LANG comes first, when it names a language Vigil has.
        assert_eq!(
            Lang::from_env(env(&[("VIGIL_LANG", "ru"), ("LC_ALL", "en_US.UTF-8")])),
            Lang::Ru
        );
        assert_eq!(
            Lang::from_env(env(&[("VIGIL_LANG", "xx"), ("LANG", "ru_RU.UTF-8")])),
            Lang::Ru
        );
    }

    #[test]
    fn the_lang_flag_is_found_before_clap_runs() {
        let args = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        assert_eq!(
            lang_flag(&args("vigil --lang ru report send")),
            Some("ru".into())
        );
        assert_eq!(
            lang_flag(&args("vigil report --lang=en send")),
            Some("en".into())
        );
        assert_eq!(
            lang_flag(&args("vigil --lang ru --lang en x")),
            Some("en".into())
        );
        assert_eq!(lang_flag(&args("vigil report send -- --lang ru")), None);
        assert_eq!(lang_flag(&args("vigil --lang")), None);
        assert_eq!(Lang::for_run(&args("vigil --lang ru_RU.UTF-8")), Lang::Ru);
        assert_eq!(Lang::for_run(&args("vigil --lang de")), Lang::En);
    }

    /// Message ids of a catalogue, and the variables each message uses.
    fn catalogue(lang: Lang) -> BTreeSet<String> {
        let file = Catalogues::get(&format!("{}/vigil.ftl", lang.code())).expect("catalogue");
        let text = std::str::from_utf8(&file.data).expect("UTF-8");
        let res = fluent_syntax::parser::parse(text).unwrap_or_else(|(_, errs)| {
            panic!("{} catalogue does not parse: {errs:?}", lang.code())
        });
        res.body
            .iter()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_message_is_in_every_language() {
        let en = catalogue(Lang::En);
        assert!(en.len() > 50, "{}", en.len());
        for lang in Lang::ALL {
            let other = catalogue(lang);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
            assert!(extra.is_empty(), "{} has extra {extra:?}", lang.code());
        }
    }

    /// Every message formats without an error in every language, for the arguments it names
    /// (each given a sample value: a number where a plural is chosen on it, a word otherwise).
    #[test]
    fn every_message_formats_in_every_language() {
        for lang in Lang::ALL {
            let loader = loader_for(lang);
            let file = Catalogues::get(&format!("{}/vigil.ftl", lang.code())).unwrap();
            let text = std::str::from_utf8(&file.data).unwrap().to_string();
            for id in catalogue(lang) {
                let vars = variables_of(&text, &id);
                for n in [1, 2, 5, 21] {
                    let args: HashMap<&str, i32> = vars.iter().map(|v| (v.as_str(), n)).collect();
                    let s = loader.get_args(&id, args);
                    assert!(!s.is_empty(), "{}: {id}", lang.code());
                    assert!(!s.contains("No localization"), "{}: {id}: {s}", lang.code());
                    assert!(!s.contains("{$"), "{}: {id}: {s}", lang.code());
                }
            }
        }
    }

    /// The `$names` a message uses (a plain scan of its text; good enough for these files).
    fn variables_of(text: &str, id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with(&format!("{id} =")) {
                inside = true;
            } else if !line.starts_with([' ', '\t']) && !line.is_empty() {
                inside = false;
            }
            if inside {
                for part in line.split('$').skip(1) {
                    let name: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    out.insert(name);
                }
            }
        }
        out
    }

    #[test]
    fn russian_is_russian_and_english_stays_english() {
        assert_eq!(by_id(Lang::En, "error-prefix"), "error");
        assert_eq!(by_id(Lang::Ru, "error-prefix"), "ошибка");
    }
}
