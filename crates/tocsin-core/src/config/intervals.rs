//! The typed form of a receivers file's `time_intervals`, in Alertmanager's syntax, as
//! parsed. Every field is kept as written (with its position); `route::intervals` compiles
//! and checks them, so that `check`, `test` and the daemon read them one way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::value::{ScalarString, Sp, Text};

/// A named period, referenced by routes' `mute_time_intervals` and `active_time_intervals`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalDef {
    /// The name routes refer to.
    pub name: Text,
    /// The period is every instant any of these contains.
    #[serde(default)]
    pub time_intervals: Vec<Sp<TimeRangeDef>>,
}

/// One part of a named period: an instant is in it when every field given contains it (an
/// absent or empty field contains every instant).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeDef {
    /// Times of day, `start_time` included and `end_time` excluded (`HH:MM`, up to `24:00`).
    #[serde(default)]
    pub times: Vec<Sp<TimesDef>>,
    /// Days of the week or ranges of them: `monday`, `monday:friday`.
    #[serde(default)]
    pub weekdays: Vec<Sp<ScalarString>>,
    /// Days of the month or ranges of them, negative counting from the month's end: `1`,
    /// `1:15`, `-1` (the last day), `-7:-1`.
    #[serde(default)]
    pub days_of_month: Vec<Sp<ScalarString>>,
    /// Months by name or number, or ranges of them: `january`, `1:3`, `october:december`.
    #[serde(default)]
    pub months: Vec<Sp<ScalarString>>,
    /// Years or ranges of them: `2026`, `2026:2028`.
    #[serde(default)]
    pub years: Vec<Sp<ScalarString>>,
    /// The IANA time zone the other fields are read in (default `UTC`), e.g. `Europe/Berlin`.
    #[serde(default)]
    pub location: Option<Sp<String>>,
}

/// A time-of-day range.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimesDef {
    /// Start, included: `HH:MM`.
    pub start_time: Sp<ScalarString>,
    /// End, excluded: `HH:MM`, up to `24:00`.
    pub end_time: Sp<ScalarString>,
}
