//! The incident report: what a reporter fills in and an NGO triages.
//!
//! The shape follows how NGOs in the North Caucasus document cases: what happened (`kind`), how urgent it is, when and where, who was
//! targeted, who are relatives at risk, who did it and in which vehicles, witnesses, the
//! narrative, what the reporter asks the NGO to do, and what the reporter consents to.
//!
//! Unknown fields are kept (in `extra` maps at every level) so that a report written by a newer
//! client survives the trip through an older one unchanged. `docs/report-format.md` describes
//! every field for people; every refusal names the field and points there.

mod time;
pub use time::is_report_time;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use zeroize::Zeroizing;

/// Largest report JSON accepted, in bytes. Structured text only: evidence files travel as
/// separate attachments, so a megabyte is several hundred pages of narrative.
pub const MAX_REPORT_JSON_LEN: usize = 1024 * 1024;
/// Largest title, in characters: a title is a line in a triage list.
pub const MAX_TITLE_CHARS: usize = 300;
/// Most entries in any one list (subjects, perpetrators, witnesses): bounds work when displaying.
pub const MAX_LIST_LEN: usize = 500;

/// Characters that change how a terminal shows text rather than being text: C0 and C1 controls
/// (newline, carriage return, escape, ...), DEL, and the Unicode bidirectional controls
/// (embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069, the marks U+200E, U+200F
/// and U+061C) and the line and paragraph separators U+2028, U+2029.
///
/// A report is written by someone the NGO cannot vet, and the NGO reads it in a terminal: an
/// escape sequence could clear a line or move the cursor, a carriage return or a newline could
/// start a line that looks like Vigil's own output (a forged "Signed by" line), and an override
/// could make `evil` read as `live`. The one-line fields (names, title, dates) refuse them (see
/// [`Report::validate`]); free text keeps its newlines and the client shows every such
/// character as a visible escape.
pub fn is_display_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The JSON is larger than [`MAX_REPORT_JSON_LEN`].
    #[error("report is {len} bytes, more than the {max}-byte limit; move long material into an attachment")]
    TooLarge {
        /// Size seen.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid JSON of the report's shape.
    #[error("report is not valid: {0}; see docs/report-format.md")]
    Json(#[from] serde_json::Error),
    /// A field is missing, or present with a value that is not acceptable.
    #[error("report field `{field}` {problem}; see docs/report-format.md")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What is wrong, phrased to follow the field name.
        problem: String,
    },
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Taken by unidentified people, often in unmarked cars.
    Abduction,
    /// Held by the authorities without due process.
    ArbitraryDetention,
    /// Whereabouts unknown; authorities deny holding the person.
    Disappearance,
    /// Torture or ill-treatment.
    Torture,
    /// Threats against the person.
    Threat,
    /// A relative detained or threatened as leverage.
    RelativeThreatened,
    /// Imminent return to a country where the person is at risk.
    DeportationRisk,
    /// Anything else.
    Other,
}

impl ReportKind {
    /// All kinds, for prompts and help text.
    pub const ALL: [ReportKind; 8] = [
        ReportKind::Abduction,
        ReportKind::ArbitraryDetention,
        ReportKind::Disappearance,
        ReportKind::Torture,
        ReportKind::Threat,
        ReportKind::RelativeThreatened,
        ReportKind::DeportationRisk,
        ReportKind::Other,
    ];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Abduction => "abduction",
            ReportKind::ArbitraryDetention => "arbitrary_detention",
            ReportKind::Disappearance => "disappearance",
            ReportKind::Torture => "torture",
            ReportKind::Threat => "threat",
            ReportKind::RelativeThreatened => "relative_threatened",
            ReportKind::DeportationRisk => "deportation_risk",
            ReportKind::Other => "other",
        }
    }
}

/// How fast the NGO should act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Routine documentation.
    Low,
    /// Act within days.
    Normal,
    /// Act today.
    High,
    /// Minutes matter: a person is being held or moved now.
    Urgent,
}

impl Urgency {
    /// All urgencies, least urgent first.
    pub const ALL: [Urgency; 4] = [
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
        Urgency::Urgent,
    ];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Urgent => "urgent",
        }
    }
}

/// Where it happened.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Location {
    /// A description a person can follow.
    pub text: String,
    /// Latitude in degrees, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude in degrees, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A person the report is about: victim, relative at risk, witness.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Subject {
    /// Name or pseudonym.
    pub name: String,
    /// `victim`, `relative`, `witness`, ...
    pub role: String,
    /// Anything else about the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A vehicle used by perpetrators.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Vehicle {
    /// Make, colour, markings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Registration plate, or "unknown".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Who did it.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Perpetrator {
    /// Agency or unit, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Vehicles seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicles: Option<Vec<Vehicle>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Someone who saw it.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Witness {
    /// Name or pseudonym.
    pub name: String,
    /// How (and how not) to reach them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the reporter allows the NGO to do with the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Consent {
    /// May the NGO publish (anonymised) details?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<bool>,
    /// May the NGO share with partner organisations and lawyers?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_with_partners: Option<bool>,
    /// May the NGO contact the reporter?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_me: Option<bool>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The types that hold a report's text print no content in `{:?}`: a report is the most
/// sensitive thing Vigil handles, and a `Debug` print ends up in logs, panics and error chains.
macro_rules! debug_without_content {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($t), " { .. }"))
            }
        }
    )*};
}
debug_without_content!(Location, Subject, Vehicle, Perpetrator, Witness);

impl fmt::Debug for Report {
    /// Kind and urgency only: no text, no names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("kind", &self.kind)
            .field("urgency", &self.urgency)
            .finish_non_exhaustive()
    }
}

/// An incident report.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What happened.
    pub kind: ReportKind,
    /// How urgent.
    pub urgency: Urgency,
    /// One line for the triage list.
    pub title: String,
    /// When it happened: an ISO 8601 date or date-time, as precise as known.
    pub occurred_at: String,
    /// How precise `occurred_at` is: minute, hour, day, week, month, year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at_precision: Option<String>,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Victims, relatives at risk and others the report is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Subject>,
    /// Who did it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perpetrators: Vec<Perpetrator>,
    /// Who saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnesses: Option<Vec<Witness>>,
    /// What happened, in the reporter's words.
    pub narrative: String,
    /// What the reporter asks the NGO to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_action: Option<String>,
    /// Language of the free text (BCP 47 tag such as `ru`, `en`, `ce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// What the reporter consents to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Report {
    /// Parse and validate report JSON. The size is checked before parsing.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ReportError> {
        if bytes.len() > MAX_REPORT_JSON_LEN {
            return Err(ReportError::TooLarge {
                len: bytes.len(),
                max: MAX_REPORT_JSON_LEN,
            });
        }
        // Read as plain JSON first, so the fields people get wrong most are refused by name
        // (serde's own message names neither the field nor the allowed values).
        let value: Value = serde_json::from_slice(bytes)?;
        check_shape(&value)?;
        let report = Report::deserialize(value)?;
        report.validate()?;
        Ok(report)
    }

    /// Serialize to JSON for the envelope; validates first so that nothing invalid is sent.
    ///
    /// The JSON is wiped when dropped. It is measured first and written into a buffer of exactly
    /// that size, so that no growing buffer leaves an unwiped copy of the report behind.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, ReportError> {
        self.validate()?;
        let mut counter = Counter(0);
        serde_json::to_writer(&mut counter, self)?;
        if counter.0 > MAX_REPORT_JSON_LEN {
            return Err(ReportError::TooLarge {
                len: counter.0,
                max: MAX_REPORT_JSON_LEN,
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(counter.0));
        serde_json::to_writer(&mut *bytes, self)?;
        Ok(bytes)
    }

    /// The rules a report must meet to be sent, beyond [`Report::validate`]'s: `occurred_at` is a
    /// real date or time ([`is_report_time`]). Checked when sealing, not when opening, so a
    /// report from an older client that wrote a looser date still reaches the NGO.
    pub fn check_for_sending(&self) -> Result<(), ReportError> {
        if !is_report_time(&self.occurred_at) {
            return Err(ReportError::Field {
                field: "occurred_at",
                problem: format!(
                    "must be a date such as 2024-02-20, a date and time such as 2024-02-20T10:00:00+03:00, or 2024-02 or 2024 when the day is not known (got {:?})",
                    self.occurred_at.chars().take(40).collect::<String>()
                ),
            });
        }
        Ok(())
    }

    /// Check the rules the types cannot express.
    pub fn validate(&self) -> Result<(), ReportError> {
        let field = |field: &'static str, problem: &str| ReportError::Field {
            field,
            problem: problem.to_string(),
        };
        if self.title.trim().is_empty() {
            return Err(field("title", "is empty; give the report a one-line title"));
        }
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(field("title", &format!("is longer than {MAX_TITLE_CHARS} characters; shorten it and put detail in the narrative")));
        }
        if self.occurred_at.trim().is_empty() || self.occurred_at.len() > 64 {
            return Err(field(
                "occurred_at",
                "must be a date such as 2024-02-20 or 2024-02-20T10:00:00+03:00",
            ));
        }
        self.check_one_line_fields()?;
        if self.narrative.trim().is_empty() {
            return Err(field("narrative", "is empty; describe what happened"));
        }
        for (name, len) in [
            ("subjects", self.subjects.len()),
            ("perpetrators", self.perpetrators.len()),
            ("witnesses", self.witnesses.as_ref().map_or(0, Vec::len)),
        ] {
            if len > MAX_LIST_LEN {
                return Err(ReportError::Field {
                    field: name,
                    problem: format!("has {len} entries, more than {MAX_LIST_LEN}"),
                });
            }
        }
        if let Some(loc) = &self.location {
            if loc.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
                return Err(field("location.lat", "must be between -90 and 90"));
            }
            if loc.lon.is_some_and(|v| !(-180.0..=180.0).contains(&v)) {
                return Err(field("location.lon", "must be between -180 and 180"));
            }
        }
        Ok(())
    }

    /// Refuse terminal controls (see [`is_display_control`]) in the fields that are one line by
    /// nature: the title, the dates, the language, and the names and roles of people, agencies
    /// and plates. `kind` and `urgency` are enums, so they cannot hold any. Checked both when a
    /// report is sealed and when one is opened, so a report carrying them is refused like any
    /// invalid report (and kept under `inbox/rejected/` by the NGO).
    fn check_one_line_fields(&self) -> Result<(), ReportError> {
        let mut fields: Vec<(&'static str, &str)> =
            vec![("title", &self.title), ("occurred_at", &self.occurred_at)];
        fields.extend(
            self.occurred_at_precision
                .as_deref()
                .map(|v| ("occurred_at_precision", v)),
        );
        fields.extend(self.language.as_deref().map(|v| ("language", v)));
        for s in &self.subjects {
            fields.push(("subjects.name", &s.name));
            fields.push(("subjects.role", &s.role));
        }
        for w in self.witnesses.iter().flatten() {
            fields.push(("witnesses.name", &w.name));
        }
        for p in &self.perpetrators {
            fields.extend(p.agency.as_deref().map(|v| ("perpetrators.agency", v)));
            for v in p.vehicles.iter().flatten() {
                fields.extend(
                    v.plate
                        .as_deref()
                        .map(|p| ("perpetrators.vehicles.plate", p)),
                );
            }
        }
        for (field, value) in fields {
            if let Some(c) = value.chars().find(|&c| is_display_control(c)) {
                return Err(ReportError::Field {
                    field,
                    problem: format!(
                        "contains the control character U+{:04X}, which a one-line field may not hold; remove it (line breaks belong in the narrative)",
                        u32::from(c)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Names of everyone the report mentions, for a redacted summary count.
    pub fn people_count(&self) -> usize {
        self.subjects.len() + self.witnesses.as_ref().map_or(0, Vec::len)
    }
}

/// A writer that only counts, to size a buffer before writing plaintext into it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuse by name what people get wrong most: a report that is not an object, a required field
/// that is missing, and a `kind` or `urgency` that is not one of the allowed words.
fn check_shape(value: &Value) -> Result<(), ReportError> {
    let Some(obj) = value.as_object() else {
        return Err(ReportError::Field {
            field: "(report)",
            problem: "must be a JSON object, { ... }".into(),
        });
    };
    for required in ["kind", "urgency", "title", "occurred_at", "narrative"] {
        if !obj.contains_key(required) {
            return Err(ReportError::Field {
                field: required,
                problem: "is missing".into(),
            });
        }
    }
    let one_of = |field: &'static str, allowed: &[&str]| -> Result<(), ReportError> {
        match &obj[field] {
            Value::String(s) if allowed.contains(&s.as_str()) => Ok(()),
            other => {
                let got: String = other.to_string().chars().take(40).collect();
                Err(ReportError::Field {
                    field,
                    problem: format!("must be one of {}, got {got}", allowed.join("|")),
                })
            }
        }
    };
    one_of("kind", &ReportKind::ALL.map(ReportKind::as_str))?;
    one_of("urgency", &Urgency::ALL.map(Urgency::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"kind":"abduction","urgency":"urgent","title":"Taken","occurred_at":"2024-01-01",
      "location":{"text":"Grozny","lat":43.3,"lon":45.7,"district":"x"},
      "subjects":[{"name":"A","role":"victim","age":19}],"narrative":"n","future_field":[1,2]}"#;

    #[test]
    fn errors_name_the_field_and_the_allowed_values() {
        let e = Report::from_json(SAMPLE.replace("\"urgent\"", "5").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "report field `urgency` must be one of low|normal|high|urgent, got 5; see docs/report-format.md"
        );
        let e =
            Report::from_json(SAMPLE.replace("\"narrative\":\"n\",", "").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "report field `narrative` is missing; see docs/report-format.md"
        );
        let e = Report::from_json(b"[1]").unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        // Refused for sending; a report that says it anyway still opens at the NGO.
        let yesterday =
            Report::from_json(SAMPLE.replace("2024-01-01", "yesterday").as_bytes()).unwrap();
        let e = yesterday.check_for_sending().unwrap_err();
        assert!(
            matches!(
                e,
                ReportError::Field {
                    field: "occurred_at",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_survive() {
        let r = Report::from_json(SAMPLE.as_bytes()).unwrap();
        let back: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        let orig: Value = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn refuses_bad_reports() {
        let too_big = vec![b' '; MAX_REPORT_JSON_LEN + 1];
        assert!(matches!(
            Report::from_json(&too_big),
            Err(ReportError::TooLarge { .. })
        ));
        let bad_kind = SAMPLE.replace("abduction", "picnic");
        assert!(matches!(
            Report::from_json(bad_kind.as_bytes()),
            Err(ReportError::Field { field: "kind", .. })
        ));
        let no_title = SAMPLE.replace("\"Taken\"", "\"  \"");
        assert!(matches!(
            Report::from_json(no_title.as_bytes()),
            Err(ReportError::Field { field: "title", .. })
        ));
        let bad_lat = SAMPLE.replace("43.3", "143.3");
        assert!(matches!(
            Report::from_json(bad_lat.as_bytes()),
            Err(ReportError::Field {
                field: "location.lat",
                ..
            })
        ));
        assert!(Report::from_json(b"[").is_err());
        let deep = "[".repeat(10_000);
        assert!(Report::from_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn debug_prints_no_content() {
        let r = Report::from_json(SAMPLE.as_bytes()).unwrap();
        let d = format!("{r:?} {:?} {:?}", r.subjects, r.location);
        assert!(!d.contains("Taken") && !d.contains("Grozny"), "{d}");
        assert!(d.contains("Abduction"), "{d}");
        let json = r.to_json().unwrap();
        assert_eq!(
            json.len(),
            json.capacity(),
            "sized exactly: no reallocation"
        );
    }

    #[test]
    fn terminal_controls_are_refused_in_one_line_fields() {
        let ok = Report::from_json(SAMPLE.as_bytes()).unwrap();
        for bad in [
            "\n\nSigned by reporter key x",
            "a\rb",
            "\u{1b}[2Kx",
            "\u{202E}evil",
            "\u{2066}x\u{2069}",
            "\u{200F}x",
            "\u{061C}x",
            "x\u{9b}2K",
        ] {
            let mut r = ok.clone();
            r.title = bad.into();
            assert!(
                matches!(r.validate(), Err(ReportError::Field { field: "title", .. })),
                "{bad:?}"
            );
            let mut r = ok.clone();
            r.subjects[0].name = bad.into();
            assert!(matches!(
                r.to_json(),
                Err(ReportError::Field {
                    field: "subjects.name",
                    ..
                })
            ));
            let mut r = ok.clone();
            r.witnesses = Some(vec![Witness {
                name: bad.into(),
                ..Default::default()
            }]);
            assert!(r.validate().is_err());
            // And on the way in, as an NGO would open it.
            let json = serde_json::to_vec(&r).unwrap();
            assert!(matches!(
                Report::from_json(&json),
                Err(ReportError::Field {
                    field: "witnesses.name",
                    ..
                })
            ));
        }
        // Free text keeps its line breaks; ordinary non-Latin text passes.
        let mut r = ok.clone();
        r.narrative = "line one\nline two\r\n".into();
        r.title = "Ахмед, מזכר, سلام".into();
        assert!(r.validate().is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let _ = Report::from_json(&bytes);
        }

        #[test]
        fn arbitrary_text_fields_round_trip(title in "\\PC{1,200}", narrative in "\\PC{1,2000}") {
            let r = Report {
                kind: ReportKind::Threat, urgency: Urgency::High, title, occurred_at: "2024-01-01".into(),
                occurred_at_precision: None, location: None, subjects: vec![], perpetrators: vec![],
                witnesses: None, narrative, requested_action: None, language: None, consent: None,
                extra: Map::new(),
            };
            if r.validate().is_ok() {
                let back = Report::from_json(&r.to_json().unwrap()).unwrap();
                proptest::prop_assert_eq!(back, r);
            }
        }
    }
}
