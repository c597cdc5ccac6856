//! The typed form of the engine config, `tocsin.yaml`. Every key has a default, so
//! an empty or absent file is a valid configuration. Every string value is a [`Text`] (after
//! `${ENV}` substitution, secret-aware).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::value::{ByteSize, Dur, Sp, Text};

/// The engine configuration.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(title = "tocsin engine config")]
pub struct EngineConfig {
    /// Rule files and directories (default `[rules/]`).
    pub rules: Vec<Text>,
    /// Receiver files and directories (default `[receivers/]`).
    pub receivers: Vec<Text>,
    /// Directory of the embedded store (default `data/`).
    pub data_dir: Text,
    /// HTTP listen address (default `127.0.0.1:9470`).
    pub listen: Text,
    /// Default rule group interval (default 15s).
    pub evaluation_interval: Sp<Dur>,
    /// How long alert history is kept (default 30d).
    pub history_retention: Sp<Dur>,
    /// Value history: one min/max/last point per alert instance and recorded series and
    /// step of this length (default 1m, at least 1s), kept for `history_retention`.
    pub history_resolution: Sp<Dur>,
    /// Age past which a sample is no longer a series' current value (default 5m).
    pub staleness: Sp<Dur>,
    /// When set, required for mutating endpoints. An empty value (e.g. from
    /// `${TOCSIN_API_TOKEN:-}`) is loaded as unset.
    pub api_token: Option<Text>,
    /// Most HTTP connections open at once (default 512); further ones are accepted and
    /// closed at once, so slow clients cannot use up the process' file descriptors.
    pub max_connections: NonZeroU32,
    /// Base of every link in notifications (`generatorURL`, links in Slack, email and
    /// native webhook bodies): an absolute http(s) URL. Default `http://<listen>`, with an
    /// unspecified address (`0.0.0.0`, `[::]`) replaced by this host's name
    /// ([`EngineConfig::external_url`]).
    pub external_url: Option<Text>,
    /// Labels added to every alert sent (all receivers, `/api/v1/alerts`, history and the
    /// fingerprint). An alert's own label of the same name wins, as in Prometheus.
    pub external_labels: BTreeMap<String, Text>,
    /// Metric sources.
    pub sources: SourcesConfig,
}

fn default_dur(secs: u64) -> Sp<Dur> {
    Sp::new(Dur(Duration::from_secs(secs)), 0, 0)
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            rules: vec![Text::plain("rules/")],
            receivers: vec![Text::plain("receivers/")],
            data_dir: Text::plain("data/"),
            listen: Text::plain("127.0.0.1:9470"),
            evaluation_interval: default_dur(15),
            history_retention: default_dur(30 * 24 * 3600),
            history_resolution: default_dur(60),
            staleness: default_dur(5 * 60),
            api_token: None,
            max_connections: const { NonZeroU32::new(512).unwrap() },
            external_url: None,
            external_labels: BTreeMap::new(),
            sources: SourcesConfig::default(),
        }
    }
}

impl EngineConfig {
    /// The URL links in notifications start with (no trailing `/`): `external_url`, else
    /// `http://<listen>`. A wildcard listen address (`0.0.0.0`, `[::]`) cannot be
    /// connected to from elsewhere, so it is replaced by `hostname` (the machine's name,
    /// which the caller looks up, as Prometheus does for its default external URL), or by
    /// `127.0.0.1` when the name is unknown.
    pub fn external_url(&self, hostname: Option<&str>) -> String {
        if let Some(url) = &self.external_url {
            return url.expose().trim_end_matches('/').to_string();
        }
        let listen = self.listen.expose();
        match listen.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_unspecified() => {
                let host = hostname.filter(|h| !h.is_empty()).unwrap_or("127.0.0.1");
                format!("http://{host}:{}", addr.port())
            }
            _ => format!("http://{listen}"),
        }
    }
}

/// The shortest `history_resolution`: finer steps would write a point per instance at
/// nearly every evaluation, which is what the history's compact encoding cannot absorb.
pub const MIN_HISTORY_RESOLUTION: Duration = Duration::from_secs(1);

/// `history_resolution` must be at least [`MIN_HISTORY_RESOLUTION`].
pub(super) fn check_history_resolution(path: &str, res: &Sp<Dur>) -> Option<crate::diag::Diagnostic> {
    (res.value.0 < MIN_HISTORY_RESOLUTION).then(|| {
        crate::diag::Diagnostic::error(
            path,
            res.line(),
            res.column(),
            "history-resolution",
            format!("`history_resolution` is {}, shorter than 1s", res.value),
        )
        .with_hint("write a step of at least `1s`, e.g. `1m` (the default); see docs/configuration.md")
    })
}

/// The metric sources.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// Host metrics: on when absent (every 5s); `system: ~` (null) turns them off.
    pub system: Option<SystemSource>,
    /// Prometheus endpoints to scrape.
    pub scrape: Vec<ScrapeSource>,
    /// `POST /api/v1/push`.
    pub push: PushSource,
    /// Log files whose regex matches are counted.
    pub logs: Vec<LogSource>,
}

/// The host is watched unless `system: ~` (null) turns it off: a first run needs no file.
impl Default for SourcesConfig {
    fn default() -> SourcesConfig {
        SourcesConfig {
            system: Some(SystemSource::default()),
            scrape: Vec::new(),
            push: PushSource::default(),
            logs: Vec::new(),
        }
    }
}

/// Host metrics.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SystemSource {
    /// Collection interval (default 5s).
    pub interval: Option<Sp<Dur>>,
    /// Process names to report on.
    pub processes: Vec<Text>,
}

/// A Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeSource {
    /// Job name (the `job` label).
    pub name: Text,
    /// Metrics URL.
    pub url: Text,
    /// Scrape interval (default: the engine's `evaluation_interval`).
    #[serde(default)]
    pub interval: Option<Sp<Dur>>,
    /// Request time limit (default 10s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
    /// Most series of this target alive at once (default 100000); samples that would
    /// create more are refused and counted, so a label explosion cannot exhaust memory.
    /// Series that went stale leave the count.
    #[serde(default = "default_max_series")]
    pub max_series: u32,
    /// Keep the target's own `job` and `instance` labels (default false: they are kept as
    /// `exported_job`/`exported_instance` and the scrape's own take their place), as
    /// Prometheus does; for federation and for scraping another tocsin.
    #[serde(default)]
    pub honor_labels: bool,
}

fn default_max_series() -> u32 {
    100_000
}

/// The push endpoint.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PushSource {
    /// Whether `POST /api/v1/push` accepts samples (default true).
    pub enabled: bool,
    /// Largest accepted body (default 1MiB).
    pub max_body: ByteSize,
    /// Most pushed series alive at once (default 100000); samples that would create more
    /// are refused and counted. Series that went stale leave the count.
    pub max_series: u32,
}

impl Default for PushSource {
    fn default() -> PushSource {
        PushSource {
            enabled: true,
            max_body: ByteSize(1 << 20),
            max_series: default_max_series(),
        }
    }
}

/// A log file to tail.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    /// File path.
    pub path: Text,
    /// Pattern name (the `pattern` label) → regex.
    #[serde(default)]
    pub patterns: BTreeMap<String, Text>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_resolution_defaults_to_a_minute_and_must_be_a_second_or_more() {
        let parse = |text: &str| {
            super::super::parse_config(
                &super::super::Source::from_text("tocsin.yaml", text).unwrap(),
                &|_: &str| None,
            )
        };
        assert_eq!(parse("").unwrap().history_resolution.value.0, Duration::from_secs(60));
        assert_eq!(
            parse("history_resolution: 1s").unwrap().history_resolution.value.0,
            Duration::from_secs(1)
        );
        let diags = parse("listen: 127.0.0.1:1\nhistory_resolution: 500ms\n").unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = &diags[0];
        assert_eq!((d.code, d.line, d.column), ("history-resolution", 2, 21), "{d:?}");
        assert!(d.message.contains("shorter than 1s"), "{}", d.message);
    }

    fn listening(listen: &str, external_url: Option<&str>) -> EngineConfig {
        EngineConfig {
            listen: Text::plain(listen),
            external_url: external_url.map(Text::plain),
            ..EngineConfig::default()
        }
    }

    #[test]
    fn links_start_at_external_url_else_a_connectable_listen_address() {
        let set = listening("0.0.0.0:9470", Some("https://tocsin.example.com/"));
        assert_eq!(set.external_url(Some("vm")), "https://tocsin.example.com");
        assert_eq!(
            listening("127.0.0.1:9470", None).external_url(Some("vm")),
            "http://127.0.0.1:9470"
        );
        assert_eq!(
            listening("alerts.lan:9470", None).external_url(Some("vm")),
            "http://alerts.lan:9470"
        );
        assert_eq!(
            listening("0.0.0.0:9470", None).external_url(Some("vm")),
            "http://vm:9470"
        );
        assert_eq!(listening("[::]:9470", None).external_url(Some("vm")), "http://vm:9470");
        assert_eq!(
            listening("0.0.0.0:9470", None).external_url(None),
            "http://127.0.0.1:9470"
        );
        assert_eq!(
            listening("[::]:9470", None).external_url(Some("")),
            "http://127.0.0.1:9470"
        );
    }
}
