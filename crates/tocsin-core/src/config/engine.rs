//! The typed form of the engine config, `tocsin.yaml`. Every key has a default, so
//! an empty or absent file is a valid configuration. Every string value is a [`Text`] (after
//! `${ENV}` substitution, secret-aware).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate;
use super::value::{ByteSize, Dur, Sp, Text};
use crate::diag::Diagnostic;

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
    /// Prometheus-compatible query APIs (Prometheus, VictoriaMetrics, Thanos, Mimir) that
    /// `query` sources read from, by name.
    pub datasources: Vec<DatasourceConfig>,
    /// Prometheus remote-write 1.0 endpoints that recorded series and `ALERTS` are sent to.
    pub remote_write: Vec<RemoteWriteConfig>,
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
            datasources: Vec::new(),
            remote_write: Vec::new(),
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
    /// PromQL results of a datasource, stored as local series.
    pub query: Vec<QuerySource>,
}

/// The host is watched unless `system: ~` (null) turns it off: a first run needs no file.
impl Default for SourcesConfig {
    fn default() -> SourcesConfig {
        SourcesConfig {
            system: Some(SystemSource::default()),
            scrape: Vec::new(),
            push: PushSource::default(),
            logs: Vec::new(),
            query: Vec::new(),
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

/// A Prometheus-compatible HTTP query API.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasourceConfig {
    /// The name `query` sources refer to it by.
    pub name: Text,
    /// Base URL of the API: queries go to `<url>/api/v1/query` and `<url>/api/v1/query_range`
    /// (for Mimir, e.g. `http://mimir:8080/prometheus`).
    pub url: Text,
    /// Time limit of one query (default 10s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
    /// Extra request headers, e.g. `X-Scope-OrgID` for a multi-tenant Mimir or Thanos.
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<Text>,
}

/// HTTP basic authentication.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: Text,
    /// Password (write it as `${ENV}` to keep it out of the file).
    pub password: Text,
}

/// The `Authorization` header value of basic auth (`(username, password)`) or a bearer
/// token; basic auth wins when both are given (`config` refuses that).
pub fn authorization(basic: Option<(&str, &str)>, bearer: Option<&str>) -> Option<String> {
    match (basic, bearer) {
        (Some((user, password)), _) => Some(format!(
            "Basic {}",
            base64_engine::encode(format!("{user}:{password}").as_bytes())
        )),
        (None, Some(token)) => Some(format!("Bearer {token}")),
        (None, None) => None,
    }
}

/// Standard base64 (RFC 4648, with padding), for basic auth: a dozen lines rather than a
/// dependency.
mod base64_engine {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// `bytes` in base64.
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// A `query` source: PromQL strings sent to a datasource as instant queries.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuerySource {
    /// Name of the datasource (in `datasources`) the queries go to.
    pub datasource: Text,
    /// Query interval, aligned to multiples of it (default: the engine's `evaluation_interval`).
    #[serde(default)]
    pub interval: Option<Sp<Dur>>,
    /// How far back the windows are filled with one `query_range` per query at start
    /// (default: the longest window, `for` and `keep_firing_for` the rules read; `0s` turns
    /// it off).
    #[serde(default)]
    pub backfill: Option<Sp<Dur>>,
    /// Local metric name → PromQL: every series a query returns is stored under its name,
    /// with the labels the datasource returned.
    pub series: BTreeMap<String, Text>,
    /// Most series one query may return, and most series of this source alive at once
    /// (default 10000); a query answering more fails as a whole.
    #[serde(default = "default_query_max_series")]
    pub max_series: u32,
}

fn default_query_max_series() -> u32 {
    10_000
}

/// What a remote-write endpoint is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RemoteWriteSend {
    /// The series recording rules write, under their names.
    Recorded,
    /// `ALERTS` and `ALERTS_FOR_STATE`, with Prometheus' names and labels.
    Alerts,
}

/// A Prometheus remote-write 1.0 endpoint (protobuf + snappy).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Where to POST, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: Text,
    /// What to send (default both: `[recorded, alerts]`).
    #[serde(default = "default_send")]
    pub send: Vec<RemoteWriteSend>,
    /// Labels added to every written series, never to alerts: they tell the replicas of an
    /// HA pair apart to TSDBs that de-duplicate them (Mimir, Thanos, VictoriaMetrics).
    #[serde(default)]
    pub replica_labels: BTreeMap<String, Text>,
    /// How often the current values are sampled (default: the engine's `evaluation_interval`).
    #[serde(default)]
    pub interval: Option<Sp<Dur>>,
    /// Time limit of one request (default 30s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
    /// Most samples waiting in memory (default 100000); past it the oldest are dropped and
    /// counted, so an endpoint that is down never grows the process.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: u32,
    /// Most samples in one request (default 2000).
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: u32,
    /// Extra request headers, e.g. `X-Scope-OrgID`.
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<Text>,
}

fn default_send() -> Vec<RemoteWriteSend> {
    vec![RemoteWriteSend::Recorded, RemoteWriteSend::Alerts]
}

fn default_queue_capacity() -> u32 {
    100_000
}

fn default_max_samples_per_send() -> u32 {
    2_000
}

/// Checks of the scale-out keys that parse but could not be used: URLs, header names and
/// values, label names, a `datasource:` no datasource defines, two datasources of one name,
/// both `basic_auth` and `bearer_token`, zero sizes. `text` is the file's text (header names
/// carry no position of their own).
pub(super) fn validate_scale(path: &str, text: &str, config: &EngineConfig) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for ds in &config.datasources {
        diags.extend(validate::text_url(path, "url", &ds.url));
        diags.extend(endpoint_auth(
            path,
            text,
            &ds.headers,
            &ds.basic_auth,
            &ds.bearer_token,
            &ds.name,
        ));
        if !names.insert(ds.name.expose()) {
            diags.push(Diagnostic::error(
                path,
                ds.name.line(),
                ds.name.column(),
                "duplicate-datasource",
                format!("a datasource named `{}` is already defined", ds.name.expose()),
            ));
        }
    }
    for q in &config.sources.query {
        if !names.contains(q.datasource.expose()) {
            let known: Vec<&str> = names.iter().copied().collect();
            diags.push(
                Diagnostic::error(
                    path,
                    q.datasource.line(),
                    q.datasource.column(),
                    "unknown-datasource",
                    format!("no datasource is named `{}`", q.datasource.expose()),
                )
                .with_hint(if known.is_empty() {
                    "define it under `datasources:` (name and url)".to_string()
                } else {
                    format!("defined: {}", known.join(", "))
                }),
            );
        }
        if q.max_series == 0 {
            diags.push(Diagnostic::error(
                path,
                q.datasource.line(),
                q.datasource.column(),
                "zero",
                "`max_series` of a query source must be at least 1",
            ));
        }
        for (name, query) in &q.series {
            if !is_metric_name(name) {
                let (line, column) = validate::key_position(text, name, query.line(), query.column());
                diags.push(
                    Diagnostic::error(
                        path,
                        line,
                        column,
                        "metric-name",
                        format!("`{name}` is not a metric name"),
                    )
                    .with_hint("letters, digits, `_` and `:`, not starting with a digit"),
                );
            }
        }
    }
    for rw in &config.remote_write {
        diags.extend(validate::text_url(path, "url", &rw.url));
        diags.extend(endpoint_auth(
            path,
            text,
            &rw.headers,
            &rw.basic_auth,
            &rw.bearer_token,
            &rw.url,
        ));
        for (name, value) in &rw.replica_labels {
            if !is_label_name(name) || name == "__name__" {
                let (line, column) = validate::key_position(text, name, value.line(), value.column());
                diags.push(Diagnostic::error(
                    path,
                    line,
                    column,
                    "label-name",
                    format!("`{name}` is not a label name a series can carry"),
                ));
            }
        }
        if rw.queue_capacity == 0 || rw.max_samples_per_send == 0 {
            diags.push(Diagnostic::error(
                path,
                rw.url.line(),
                rw.url.column(),
                "zero",
                "`queue_capacity` and `max_samples_per_send` of a remote write must be at least 1",
            ));
        }
    }
    diags
}

/// Headers and credentials of an HTTP endpoint: valid headers, at most one of `basic_auth`
/// and `bearer_token`. `at` locates the endpoint.
pub(super) fn endpoint_auth(
    path: &str,
    text: &str,
    headers: &BTreeMap<String, Text>,
    basic_auth: &Option<BasicAuth>,
    bearer_token: &Option<Text>,
    at: &Text,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (name, value) in headers {
        let at = validate::HeaderAt {
            name: validate::key_position(text, name, value.line(), value.column()),
            value: (value.line(), value.column()),
        };
        diags.extend(validate::header(path, name, value.expose(), value.is_secret(), at));
    }
    if basic_auth.is_some() && bearer_token.is_some() {
        diags.push(
            Diagnostic::error(
                path,
                at.line(),
                at.column(),
                "auth",
                "give `basic_auth` or `bearer_token`, not both",
            )
            .with_hint("both would set the `Authorization` header"),
        );
    }
    diags
}

/// Prometheus' metric name syntax, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Prometheus' label name syntax, `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
    fn credentials_become_an_authorization_value() {
        assert_eq!(
            authorization(Some(("Aladdin", "open sesame")), None).as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(authorization(None, Some("t0k")).as_deref(), Some("Bearer t0k"));
        assert_eq!(authorization(None, None), None);
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64_engine::encode(input.as_bytes()), want);
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
