//! When two names are "the same" to a reader: the check that stops a forged card from
//! passing as a contact the reporter already trusts.
//!
//! A reporter picks an NGO from a list by its name. An attacker who can hand the reporter a
//! card (a seized colleague's phone, a fake channel) names it so it reads like a trusted one:
//! `memorial` for `Memorial`, `Memorial ` with a trailing space, `Меmorial` with a Cyrillic
//! `М` and `е`, or an invisible joiner inside. Comparing bytes, or lower case, misses all but
//! the first. The comparison here folds case, drops spacing and invisible characters, and
//! maps look-alike letters to one prototype with the confusable skeleton of Unicode Technical
//! Standard #39 (via the `unicode-security` crate), so that every one of those collides.
//!
//! It errs towards collisions: two genuine NGOs whose names differ only in look-alike letters
//! cannot both be contacts under those names, which is the price of catching the forgery.

use unicode_security::skeleton;

/// The keys under which `name` is compared with other names: its confusable skeleton as
/// written, in capitals and in small letters, each without spacing and punctuation that reads
/// as spacing.
///
/// Three, because the skeleton is case-sensitive and case folding is not confusable-aware: a
/// Cyrillic `М` maps to a Latin `M` only as a capital (its small form looks like a small
/// capital), and `rn` reads as `m` only in small letters.
pub fn comparison_keys(name: &str) -> [String; 3] {
    let squeeze = |s: &str| -> String {
        skeleton(s)
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '_' | '.' | '\u{00B7}'))
            .collect()
    };
    [
        squeeze(name),
        squeeze(&name.to_uppercase()),
        squeeze(&name.to_lowercase()),
    ]
}

/// Whether a reader could take `a` for `b`.
pub fn look_alike(a: &str, b: &str) -> bool {
    let (a, b) = (comparison_keys(a), comparison_keys(b));
    a.iter().zip(&b).any(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_spacing_and_look_alike_letters_collide() {
        let genuine = "Memorial Rights Centre";
        for forged in [
            "memorial rights centre",
            "MEMORIAL RIGHTS CENTRE",
            "Memorial  Rights Centre ",
            "MemorialRights Centre",
            "Memorial-Rights-Centre",
            // Cyrillic М, е, о; Greek Ι.
            "\u{041C}\u{0435}m\u{043E}rial Rights Centre",
            "Memor\u{0399}al Rights Centre",
            // Invisible characters inside.
            "Memo\u{200D}rial Rights\u{00AD} Centre",
            // "rn" reads as "m".
            "Mernorial Rights Centre",
        ] {
            assert!(look_alike(genuine, forged), "{forged:?}");
        }
    }

    #[test]
    fn different_names_do_not_collide() {
        for (a, b) in [
            ("Memorial", "Civic Assistance"),
            ("Desk", "Desk 2"),
            ("Мемориал", "Memorial"),
            ("Right to Life", "Right to Live"),
        ] {
            assert!(!look_alike(a, b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn cyrillic_names_fold_case_too() {
        assert!(look_alike("Мемориал", "МЕМОРИАЛ"));
        assert!(look_alike("Правозащитный центр", "правозащитный  центр"));
    }
}
