//! The typed form of a rule file (`rules/*.yaml`), as parsed: no semantic checks
//! (tier order, exactly-one-of, expressions) happen here; those belong to the rule compiler,
//! which uses the positions kept in [`Sp`] to report them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::value::{Dur, Sp};

/// A rule file: a list of rule groups.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tocsin rule file")]
pub struct RuleFile {
    /// Rule groups; each is evaluated on its own interval.
    #[serde(default)]
    pub groups: Vec<GroupDef>,
}

/// A named group of rules sharing an evaluation interval.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    /// Group name, unique across all rule files.
    pub name: Sp<String>,
    /// Evaluation interval (default: the engine's `evaluation_interval`).
    #[serde(default)]
    pub interval: Option<Sp<Dur>>,
    /// The group's alerting and recording rules, evaluated in order.
    #[serde(default)]
    pub rules: Vec<Sp<RuleDef>>,
}

/// One alerting rule (`alert:`) or recording rule (`record:`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Name of the alert (exactly one of `alert` and `record`).
    #[serde(default)]
    pub alert: Option<Sp<String>>,
    /// Name of the series a recording rule writes.
    #[serde(default)]
    pub record: Option<Sp<String>>,
    /// The expression: numeric (compared against tiers) or boolean (a condition).
    pub expr: Sp<String>,
    /// Tiers from least to most severe.
    #[serde(default)]
    pub tiers: Option<Vec<TierDef>>,
    /// How long a tier-less rule's condition must hold before it fires (default 0s).
    #[serde(default, rename = "for")]
    pub r#for: Option<Sp<Dur>>,
    /// Severity of a tier-less rule (default `warning`).
    #[serde(default)]
    pub severity: Option<Sp<String>>,
    /// Distance from a threshold the value must recede before a tier stops holding.
    #[serde(default)]
    pub hysteresis: Option<Sp<f64>>,
    /// How long to keep firing after no tier holds any more.
    #[serde(default)]
    pub keep_firing_for: Option<Sp<Dur>>,
    /// Minimum time between two notifications of an instance.
    #[serde(default)]
    pub cooldown: Option<Sp<Dur>>,
    /// Whether escalations wait for the cooldown too (default false).
    #[serde(default)]
    pub cooldown_escalations: Option<bool>,
    /// Re-notify a still-firing instance this often.
    #[serde(default)]
    pub repeat_interval: Option<Sp<Dur>>,
    /// Multiply the repeat wait by this after each repeat.
    #[serde(default)]
    pub repeat_backoff: Option<Sp<f64>>,
    /// Upper bound of the repeat wait (default 24h).
    #[serde(default)]
    pub repeat_max: Option<Sp<Dur>>,
    /// Flap detection.
    #[serde(default)]
    pub flap: Option<FlapDef>,
    /// What a missing or stale input does (default `keep`).
    #[serde(default)]
    pub no_data: Option<NoDataDef>,
    /// Labels added to every instance.
    #[serde(default)]
    pub labels: BTreeMap<String, Sp<String>>,
    /// Annotation templates (Jinja).
    #[serde(default)]
    pub annotations: BTreeMap<String, Sp<String>>,
    /// Response actions.
    #[serde(default)]
    pub actions: Vec<ActionDef>,
    /// Series selection: label → exact value, a regex after `~`, or either negated after `!`
    /// (`!v`, `!~regex`).
    #[serde(default)]
    pub select: BTreeMap<String, Sp<String>>,
    /// Grouping labels for aggregations.
    #[serde(default)]
    pub by: Vec<String>,
    /// Receivers notified directly, bypassing routes.
    #[serde(default)]
    pub notify: Vec<Sp<String>>,
}

/// One severity tier of an alerting rule.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierDef {
    /// The tier's severity.
    pub severity: Sp<String>,
    /// Met when the value is above this.
    #[serde(default)]
    pub above: Option<Sp<f64>>,
    /// Met when the value is below this.
    #[serde(default)]
    pub below: Option<Sp<f64>>,
    /// Met when this boolean expression holds.
    #[serde(default)]
    pub when: Option<Sp<String>>,
    /// How long the tier must be met before it is due (default 0s).
    #[serde(default, rename = "for")]
    pub r#for: Option<Sp<Dur>>,
    /// Explicit clear threshold.
    #[serde(default)]
    pub clear: Option<Sp<f64>>,
}

/// Flap detection settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlapDef {
    /// State changes that make an instance flapping...
    pub transitions: Sp<u32>,
    /// ...inside this window.
    pub within: Sp<Dur>,
}

/// What no data does to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoDataDef {
    /// Leave a firing instance as it is; clear pending starts.
    Keep,
    /// Resolve a firing instance now.
    Resolve,
    /// Treat the least severe tier as met; notifications carry the `nodata` flag (never a label).
    Alert,
}

/// A response action run when an instance enters a tier or resolves.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    /// Action name, unique within the rule.
    pub name: Sp<String>,
    /// Severities (entering that tier) and/or `resolved`.
    #[serde(default)]
    pub on: Vec<Sp<String>>,
    /// A program and its arguments, run without a shell.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// An HTTP call.
    #[serde(default)]
    pub webhook: Option<ActionWebhookDef>,
    /// Run time limit (default 30s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
    /// Minimum time between two runs for an instance.
    #[serde(default)]
    pub cooldown: Option<Sp<Dur>>,
    /// Maximum runs per hour.
    #[serde(default)]
    pub max_per_hour: Option<Sp<u32>>,
}

/// An action that POSTs the alert to a URL.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionWebhookDef {
    /// Where to POST.
    pub url: Sp<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request time limit.
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
}
