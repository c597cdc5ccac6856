//! The typed form of a rule unit-test file (`tests/rules/*.yaml`), as parsed. The
//! `values` notation and the expectations are interpreted by the test runner.

use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::value::{Dur, ScalarString, Sp};

/// A rule unit-test file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tocsin rule test file")]
pub struct TestFile {
    // Located, so that one that cannot be loaded is reported at its entry.
    /// Rule files under test, relative to this file.
    #[serde(default)]
    pub rule_files: Vec<Sp<String>>,
    /// Receiver files; when given, notifications are checked per receiver.
    #[serde(default)]
    pub receiver_files: Vec<Sp<String>>,
    /// Evaluation interval of groups without an interval of their own.
    #[serde(default)]
    pub evaluation_interval: Option<Sp<Dur>>,
    /// The instant of the simulated clock's 0, RFC 3339 (default `1970-01-01T00:00:00Z`):
    /// what time intervals read.
    #[serde(default)]
    pub start: Option<Start>,
    /// The test cases.
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

/// One test case.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Test name (selected by `--run`).
    pub name: Sp<String>,
    /// Spacing of input samples.
    #[serde(default)]
    pub interval: Option<Sp<Dur>>,
    /// Input series.
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    /// Expected firing alerts at given times.
    #[serde(default)]
    pub alerts: Vec<AlertExpectation>,
    /// Expected notifications.
    #[serde(default)]
    pub notifications: Option<TimedExpectations>,
    /// Expected response actions: the runs the engine admits and those their cooldown or
    /// `max_per_hour` refuses (`tocsin test` runs none of them).
    #[serde(default)]
    pub actions: Option<TimedExpectations>,
}

/// One input series.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    /// `metric{label="value",...}`.
    pub series: Sp<String>,
    /// promtool expanding notation: `a+bxN`, `a-bxN`, `axN`, `_`, `stale`.
    pub values: Sp<String>,
}

/// The full set of firing instances at a time.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertExpectation {
    /// Time since test start.
    pub at: Sp<Dur>,
    /// Every instance firing then.
    #[serde(default)]
    pub firing: Vec<ExpectedAlert>,
}

/// An expected firing instance: labels that must match (unlisted ones are ignored) and,
/// under `annotations:`, rendered annotations that must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpectedAlert {
    /// Label name → value.
    #[serde(flatten)]
    pub labels: BTreeMap<String, String>,
    /// Annotation name → rendered value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for ExpectedAlert {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectedVisitor;

        impl<'de> Visitor<'de> for ExpectedVisitor {
            type Value = ExpectedAlert;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label → value, with an optional `annotations:` map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExpectedAlert, A::Error> {
                let mut out = ExpectedAlert::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "annotations" {
                        let annotations = map.next_value::<BTreeMap<String, ScalarString>>()?;
                        out.annotations = annotations.into_iter().map(|(k, v)| (k, v.0)).collect();
                    } else {
                        let value = map.next_value::<ScalarString>()?;
                        out.labels.insert(key, value.0);
                    }
                }
                Ok(out)
            }
        }

        deserializer.deserialize_map(ExpectedVisitor)
    }
}

impl JsonSchema for ExpectedAlert {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExpectedAlert".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Labels that must match (unlisted labels are ignored), and optionally rendered annotations that must match.",
            "type": "object",
            "properties": {
                "annotations": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } }
            },
            "additionalProperties": { "type": ["string", "number", "boolean"] }
        })
    }
}

/// Expected notifications or actions, in time order.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimedExpectations {
    /// Check up to this time (default: the last `at`).
    #[serde(default)]
    pub until: Option<Sp<Dur>>,
    /// Each entry: `at` and reserved keys (notifications: `event`, `severity`, `receiver`;
    /// actions: `action`, `event`, `blocked`) and labels; all values are kept as the
    /// strings written.
    #[serde(default, deserialize_with = "expect_entries")]
    #[schemars(with = "Vec<BTreeMap<String, ScalarString>>")]
    pub expect: Vec<Sp<BTreeMap<String, String>>>,
}

/// Reads `expect:` entries whose values may be any YAML scalar (`6m`, `warning`, `2`) as text.
fn expect_entries<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Sp<BTreeMap<String, String>>>, D::Error> {
    let raw = Vec::<Sp<BTreeMap<String, ScalarString>>>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|entry| {
            let (line, column) = (entry.line(), entry.column());
            let map = entry.into_inner().into_iter().map(|(k, v)| (k, v.0)).collect();
            Sp::new(map, line, column)
        })
        .collect())
}

/// A test file's `start:`, an RFC 3339 instant read as Unix milliseconds. Anything else is
/// refused where it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Start(pub i64);

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<jiff::Timestamp>()
            .map(|t| Start(t.as_millisecond()))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{text}` is not an RFC 3339 instant such as `2026-03-28T23:00:00Z`: {e}"
                ))
            })
    }
}

impl JsonSchema for Start {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Instant".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 instant, e.g. `2026-03-28T23:00:00Z` or `2026-03-29T00:00:00+01:00`."
        })
    }
}
