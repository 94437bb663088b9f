//! `sent_to`: the NGOs a report was sealed for, named as their cards name them.
//!
//! The signed envelope lists the identity keys of every NGO a report went to, so an NGO can
//! tell a forwarded report from one addressed to it. A key means nothing to a lawyer triaging
//! the inbox, though, and the NGOs do not hold each other's cards. So the reporter's app, which
//! does hold them, writes the names beside the keys into the report itself, where the reporter's
//! signature covers them. The NGO shows a name only for a key that is also in the signed list,
//! and says "not named" for a key without one: the list of keys, not this field, decides who the
//! report went to.

use super::{is_display_control, ReportError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most entries: as many NGOs as one envelope can be sealed for.
pub const MAX_SENT_TO: usize = crate::envelope::MAX_INTENDED;
/// Longest NGO name kept, in characters (a card's name is shorter still).
const MAX_NAME_CHARS: usize = 200;

/// One NGO a report was sealed for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentTo {
    /// The NGO's name, as on the card the reporter used.
    pub name: String,
    /// The NGO's identity key (64 hex digits), as in the envelope's signed list.
    pub identity_key: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SentTo {
    /// An entry for the card named `name` with identity key `key`.
    pub fn new(name: &str, key: &crate::keys::PublicSigningKey) -> Self {
        Self {
            name: name.to_string(),
            identity_key: key.to_string(),
            extra: Map::new(),
        }
    }
}

/// Check the list's length and each entry's name and key.
pub(super) fn check(list: &[SentTo]) -> Result<(), ReportError> {
    let bad = |problem: String| ReportError::Field {
        field: "sent_to",
        problem,
    };
    if list.len() > MAX_SENT_TO {
        return Err(bad(format!(
            "has {} entries, more than {MAX_SENT_TO}",
            list.len()
        )));
    }
    for e in list {
        if e.name.trim().is_empty() || e.name.chars().count() > MAX_NAME_CHARS {
            return Err(bad(format!(
                "an NGO name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        if let Some(c) = e.name.chars().find(|&c| is_display_control(c)) {
            return Err(bad(format!(
                "an NGO name contains the control character U+{:04X}",
                u32::from(c)
            )));
        }
        if e.identity_key
            .parse::<crate::keys::PublicSigningKey>()
            .is_err()
        {
            return Err(bad(
                "identity_key must be an NGO identity key (64 hex digits)".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::report::Report;

    const BASE: &str = r#""kind":"threat","urgency":"high","title":"t","occurred_at":"2024-01-01","narrative":"n""#;

    fn with(sent_to: &str) -> Result<Report, crate::report::ReportError> {
        Report::from_json(format!("{{{BASE},\"sent_to\":{sent_to}}}").as_bytes())
    }

    #[test]
    fn names_and_keys_are_checked() {
        let key = "11".repeat(32);
        let r = with(&format!(r#"[{{"name":"Desk","identity_key":"{key}"}}]"#)).unwrap();
        assert_eq!(r.sent_to[0].name, "Desk");
        let back = Report::from_json(&r.to_json().unwrap()).unwrap();
        assert_eq!(back, r, "round trip");
        for bad in [
            format!(r#"[{{"name":"Desk\u001b[2J","identity_key":"{key}"}}]"#),
            format!(r#"[{{"name":"  ","identity_key":"{key}"}}]"#),
            r#"[{"name":"Desk","identity_key":"abc"}]"#.to_string(),
            format!(
                "[{}]",
                vec![format!(r#"{{"name":"D","identity_key":"{key}"}}"#); 17].join(",")
            ),
        ] {
            let e = with(&bad).unwrap_err().to_string();
            assert!(e.contains("sent_to"), "{bad}: {e}");
        }
    }
}
