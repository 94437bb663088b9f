//! The incident report: what a reporter fills in and an NGO triages.
//!
//! The shape follows how NGOs in the North Caucasus document cases (see the fixtures in
//! `shared/fixtures/reports/`): what happened (`kind`), how urgent it is, when and where, who was
//! targeted, who are relatives at risk, who did it and in which vehicles, witnesses, the
//! narrative, what the reporter asks the NGO to do, and what the reporter consents to.
//!
//! Unknown fields are kept (in `extra` maps at every level) so that a report written by a newer
//! client survives the trip through an older one unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest report JSON accepted, in bytes. Structured text only: evidence files travel as
/// separate attachments, so a megabyte is several hundred pages of narrative.
pub const MAX_REPORT_JSON_LEN: usize = 1024 * 1024;
/// Largest title, in characters: a title is a line in a triage list.
pub const MAX_TITLE_CHARS: usize = 300;
/// Most entries in any one list (subjects, perpetrators, witnesses): bounds work when displaying.
pub const MAX_LIST_LEN: usize = 500;

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
    #[error("report is not valid: {0}; compare it with a sample in shared/fixtures/reports")]
    Json(#[from] serde_json::Error),
    /// A field is present but its value is not acceptable.
    #[error("report field `{field}` {problem}")]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
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

/// An incident report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
        let report: Report = serde_json::from_slice(bytes)?;
        report.validate()?;
        Ok(report)
    }

    /// Serialize to JSON for the envelope; validates first so that nothing invalid is sent.
    pub fn to_json(&self) -> Result<Vec<u8>, ReportError> {
        self.validate()?;
        let bytes = serde_json::to_vec(self)?;
        if bytes.len() > MAX_REPORT_JSON_LEN {
            return Err(ReportError::TooLarge {
                len: bytes.len(),
                max: MAX_REPORT_JSON_LEN,
            });
        }
        Ok(bytes)
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

    /// Names of everyone the report mentions, for a redacted summary count.
    pub fn people_count(&self) -> usize {
        self.subjects.len() + self.witnesses.as_ref().map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"kind":"abduction","urgency":"urgent","title":"Taken","occurred_at":"2024-01-01",
      "location":{"text":"Grozny","lat":43.3,"lon":45.7,"district":"x"},
      "subjects":[{"name":"A","role":"victim","age":19}],"narrative":"n","future_field":[1,2]}"#;

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
            Err(ReportError::Json(_))
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
