//! Datasources: Prometheus-compatible HTTP query APIs (Prometheus, VictoriaMetrics, Thanos,
//! Mimir) that `query` sources read from.
//!
//! Owns the HTTP side ([`Datasource`]: `GET /api/v1/query` and `/api/v1/query_range` with
//! the configured headers, basic auth or bearer token and time limit) and the pure decoding
//! of their JSON answers, in one pass: [`Answer`] borrows every series from the body (what
//! a query source's tick stores), [`decode_instant`] and [`decode_range`] own them.
//! Every way an answer can be unusable is a [`QueryError`] variant, so the caller can log it
//! and mark the query down instead of storing half of it: a non-2xx status, a time-out, a
//! connection that breaks, a body that is not the API's JSON, an API error, a result type
//! other than the one asked for, a `NaN` or ±Inf value, more series than allowed. Error
//! texts never contain the URL or header values: both may hold secrets.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::config::DatasourceConfig;
use crate::series::{Labels, Sample, Timestamp};

/// Default time limit of one query.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read; a larger one is an error rather than unbounded memory.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// How much of an error answer's body is kept for the message.
const ERROR_BODY: usize = 256;

/// One series of an answer: its labels (as the datasource returned them, `__name__`
/// dropped: the caller stores it under a local name) and its samples, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The labels.
    pub labels: Labels,
    /// One sample for an instant query, the range's samples for a range query.
    pub samples: Vec<Sample>,
}

/// Why a query yielded nothing usable.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryError {
    /// The datasource answered with a non-2xx status (first bytes of the body).
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// No complete answer within the time limit.
    Timeout,
    /// The connection could not be made or broke off.
    Connection(String),
    /// The answer is larger than tocsin reads.
    TooLarge,
    /// The body is not the API's JSON.
    Json(String),
    /// The API said `"status": "error"`.
    Api {
        /// `errorType` (e.g. `bad_data`).
        kind: String,
        /// `error`.
        message: String,
    },
    /// The result is not of the type asked for.
    ResultType {
        /// What was asked for (`vector` or `matrix`).
        expected: &'static str,
        /// What came.
        got: String,
    },
    /// A value is `NaN` or ±Inf, which no tier can compare against.
    NonFinite {
        /// The series' labels.
        labels: String,
        /// The value as sent.
        value: String,
    },
    /// More series than allowed.
    TooManySeries {
        /// How many came.
        got: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Status { status, body } if body.is_empty() => write!(f, "HTTP {status}"),
            QueryError::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            QueryError::Timeout => write!(f, "no answer within the time limit"),
            QueryError::Connection(e) => write!(f, "connection failed: {e}"),
            QueryError::TooLarge => write!(f, "answer larger than {MAX_BODY} bytes"),
            QueryError::Json(e) => write!(f, "the answer is not Prometheus API JSON: {e}"),
            QueryError::Api { kind, message } => write!(f, "the datasource refused the query ({kind}): {message}"),
            QueryError::ResultType { expected, got } => write!(
                f,
                "the result is a {got}, not a {expected}{}",
                if *expected == "vector" && got == "scalar" {
                    " (wrap the expression in `vector(...)`)"
                } else {
                    ""
                }
            ),
            QueryError::NonFinite { labels, value } => write!(f, "series {labels} has the value {value}"),
            QueryError::TooManySeries { got, max } => {
                write!(f, "{got} series, more than this source's max_series of {max}")
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// What a query asked for: the `resultType` its answer must have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An instant query: each series has one `value`.
    Vector,
    /// A range query: each series has its `values`.
    Matrix,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Vector => "vector",
            Kind::Matrix => "matrix",
        }
    }
}

/// A decoded answer, borrowed from the body: each series' labels (sorted by name, without
/// `__name__`; a later duplicate name wins) and samples, oldest first.
///
/// Decoded in one pass over the body into flat buffers shared by all series, so decoding
/// allocates per answer, not per series (a label with escapes in the body is the one
/// string copied). Every value has been checked when an `Answer` exists: a caller storing
/// it cannot stop half-way.
pub struct Answer<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    samples: Vec<Sample>,
    /// Per series, where its pairs and its samples end in the buffers.
    ends: Vec<(usize, usize)>,
}

/// The labels of one series of an [`Answer`]: sorted by name, without duplicates or
/// `__name__`, as a [`Labels`] holds them.
#[derive(Clone, Copy)]
pub struct LabelPairs<'b, 'a>(&'b [(Cow<'a, str>, Cow<'a, str>)]);

impl LabelPairs<'_, '_> {
    /// The (name, value) pairs in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Whether `labels` are exactly these.
    pub fn equals(&self, labels: &Labels) -> bool {
        labels.len() == self.0.len() && labels.iter().eq(self.iter())
    }

    /// These labels, owned.
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.iter())
    }
}

impl<'a> Answer<'a> {
    /// Decodes the answer of an instant query (`resultType` `vector`): one sample per
    /// series. More than `max_series` series, or any unusable value, fails the whole
    /// answer: storing part of a vector would make the missing series look stale for the
    /// wrong reason.
    pub fn vector(body: &'a [u8], max_series: usize) -> Result<Answer<'a>, QueryError> {
        decode(body, Kind::Vector, max_series)
    }

    /// Decodes the answer of a range query (`resultType` `matrix`), with the same limits as
    /// [`Answer::vector`].
    pub fn matrix(body: &'a [u8], max_series: usize) -> Result<Answer<'a>, QueryError> {
        decode(body, Kind::Matrix, max_series)
    }

    /// How many series the answer holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each series' labels and samples, in answer order.
    pub fn iter(&self) -> impl Iterator<Item = (LabelPairs<'_, 'a>, &[Sample])> {
        let starts = std::iter::once((0, 0)).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|((p0, s0), &(p1, s1))| (LabelPairs(&self.pairs[p0..p1]), &self.samples[s0..s1]))
    }

    /// The series, owned.
    pub fn to_series(&self) -> Vec<Series> {
        self.iter()
            .map(|(labels, samples)| Series {
                labels: labels.to_labels(),
                samples: samples.to_vec(),
            })
            .collect()
    }
}

/// Decodes the answer of an instant query into owned series (see [`Answer::vector`]).
pub fn decode_instant(body: &[u8], max_series: usize) -> Result<Vec<Series>, QueryError> {
    Answer::vector(body, max_series).map(|a| a.to_series())
}

/// Decodes the answer of a range query into owned series (see [`Answer::matrix`]).
pub fn decode_range(body: &[u8], max_series: usize) -> Result<Vec<Series>, QueryError> {
    Answer::matrix(body, max_series).map(|a| a.to_series())
}

/// The one pass: the envelope, `data` and its `result` read as they come. The API's own
/// errors (`status: error`, another `resultType`, too many series) are told apart from
/// JSON that is not the API's once the body is read, in the order a reader of the answer
/// would check them.
fn decode(body: &[u8], kind: Kind, max_series: usize) -> Result<Answer<'_>, QueryError> {
    let json = |e: serde_json::Error| QueryError::Json(e.to_string());
    let mut out = Building {
        kind,
        max_series,
        got: 0,
        pairs: Vec::new(),
        raw: Vec::new(),
        ends: Vec::new(),
    };
    // Checked once as a whole (a fast pass over mostly ASCII) rather than string by string
    // as `from_slice` does: that was a tenth of a 1,000-series tick.
    let text = std::str::from_utf8(body).map_err(|e| QueryError::Json(format!("the body is not UTF-8: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let env = serde::Deserializer::deserialize_map(&mut de, EnvelopeSeed(&mut out)).map_err(json)?;
    de.end().map_err(json)?;
    if env.status != "success" {
        return Err(QueryError::Api {
            kind: env.error_type.map_or_else(|| env.status.to_string(), Cow::into_owned),
            message: env.error.map(Cow::into_owned).unwrap_or_default(),
        });
    }
    let data = env
        .data
        .ok_or_else(|| QueryError::Json("a success without `data`".into()))?;
    let result_type = data
        .result_type
        .ok_or_else(|| QueryError::Json("`data` without `resultType`".into()))?;
    if result_type != kind.name() {
        return Err(QueryError::ResultType {
            expected: kind.name(),
            got: result_type.into_owned(),
        });
    }
    match data.result {
        Some(ResultSeen::Read) => {}
        // `result` came before `resultType`: read now that its type is known.
        Some(ResultSeen::Deferred(raw)) => {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            serde::de::DeserializeSeed::deserialize(ResultSeed(&mut out), &mut de).map_err(json)?;
        }
        None => return Err(QueryError::Json("`data` without `result`".into())),
    }
    if out.got > max_series {
        return Err(QueryError::TooManySeries {
            got: out.got,
            max: max_series,
        });
    }
    out.finish()
}

/// The answer as it is read: labels and values as sent, checked by [`Building::finish`].
struct Building<'a> {
    kind: Kind,
    max_series: usize,
    /// Series counted, kept or not.
    got: usize,
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    raw: Vec<(f64, Cow<'a, str>)>,
    /// Per series, where its pairs and raw values end.
    ends: Vec<(usize, usize)>,
}

impl<'a> Building<'a> {
    /// Every value parsed and checked, in answer order: the first unusable one fails it.
    fn finish(self) -> Result<Answer<'a>, QueryError> {
        let mut samples = Vec::with_capacity(self.raw.len());
        let mut start = 0;
        for &(p_end, s_end) in &self.ends {
            for (t, v) in &self.raw[samples.len()..s_end] {
                samples.push(sample(LabelPairs(&self.pairs[start..p_end]), *t, v)?);
            }
            start = p_end;
        }
        Ok(Answer {
            pairs: self.pairs,
            samples,
            ends: self.ends,
        })
    }

    /// Sorts the labels of the series just read (the tail of `pairs` from `start`) by name
    /// and drops duplicate names, the later one winning, as [`Labels::from_pairs`] does.
    fn close_labels(&mut self, start: usize) {
        let tail = &mut self.pairs[start..];
        // Stable, so duplicates stay in body order; a handful of pairs, sorted in place.
        tail.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept = 0;
        for i in 1..tail.len() {
            if tail[i].0 == tail[kept].0 {
                tail.swap(kept, i);
            } else {
                kept += 1;
                tail.swap(kept, i);
            }
        }
        let len = if tail.is_empty() { 0 } else { kept + 1 };
        self.pairs.truncate(start + len);
    }
}

/// The envelope's fields other than `data`, which is read into the [`Building`].
struct Envelope<'a> {
    status: Cow<'a, str>,
    data: Option<Data<'a>>,
    error_type: Option<Cow<'a, str>>,
    error: Option<Cow<'a, str>>,
}

struct Data<'a> {
    result_type: Option<Cow<'a, str>>,
    result: Option<ResultSeen<'a>>,
}

enum ResultSeen<'a> {
    /// Read into the [`Building`] (or skipped, being of another type).
    Read,
    /// Came before `resultType`: kept to be read once it is known.
    Deferred(&'a serde_json::value::RawValue),
}

struct EnvelopeSeed<'b, 'a>(&'b mut Building<'a>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for EnvelopeSeed<'_, 'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the API's answer object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
        let (mut status, mut data, mut error_type, mut error) = (None, None, None, None);
        while let Some(Str(key)) = m.next_key::<Str<'a>>()? {
            match key.as_ref() {
                "status" => status = Some(m.next_value::<Str<'a>>()?.0),
                "data" => data = Some(m.next_value_seed(DataSeed(&mut *self.0))?),
                "errorType" => error_type = m.next_value::<Option<Str<'a>>>()?.map(|s| s.0),
                "error" => error = m.next_value::<Option<Str<'a>>>()?.map(|s| s.0),
                _ => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            status: status.ok_or_else(|| serde::de::Error::missing_field("status"))?,
            data,
            error_type,
            error,
        })
    }
}

struct DataSeed<'b, 'a>(&'b mut Building<'a>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for DataSeed<'_, 'a> {
    type Value = Data<'a>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for DataSeed<'_, 'a> {
    type Value = Data<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `resultType` and `result`")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
        let mut data = Data {
            result_type: None,
            result: None,
        };
        while let Some(Str(key)) = m.next_key::<Str<'a>>()? {
            match key.as_ref() {
                "resultType" => data.result_type = Some(m.next_value::<Str<'a>>()?.0),
                "result" => {
                    data.result = Some(match &data.result_type {
                        Some(t) if *t == self.0.kind.name() => {
                            m.next_value_seed(ResultSeed(&mut *self.0))?;
                            ResultSeen::Read
                        }
                        // Another type: `decode` says so, nothing to read.
                        Some(_) => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                            ResultSeen::Read
                        }
                        None => ResultSeen::Deferred(m.next_value()?),
                    })
                }
                _ => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(data)
    }
}

/// `data.result`: the series, up to `max_series` kept, the rest only counted.
struct ResultSeed<'b, 'a>(&'b mut Building<'a>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for ResultSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for ResultSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of series")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut s: S) -> Result<(), S::Error> {
        let out = self.0;
        loop {
            let more = if out.got < out.max_series {
                s.next_element_seed(SeriesSeed(&mut *out))?.is_some()
            } else {
                s.next_element::<serde::de::IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            out.got += 1;
        }
    }
}

/// One series: `metric` and `value` (instant) or `values` (range), in either order.
struct SeriesSeed<'b, 'a>(&'b mut Building<'a>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for SeriesSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for SeriesSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a series object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        use serde::de::Error as _;
        let out = self.0;
        let kind = out.kind;
        let field = if kind == Kind::Vector { "value" } else { "values" };
        let pairs_start = out.pairs.len();
        let (mut metric, mut values) = (false, false);
        while let Some(Str(key)) = m.next_key::<Str<'a>>()? {
            match key.as_ref() {
                "metric" if metric => return Err(M::Error::duplicate_field("metric")),
                "metric" => {
                    metric = true;
                    m.next_value_seed(MetricSeed(&mut out.pairs))?;
                }
                k if k == field && values => return Err(M::Error::duplicate_field(field)),
                k if k == field => {
                    values = true;
                    match kind {
                        Kind::Vector => {
                            let (t, Str(v)) = m.next_value::<(f64, Str<'a>)>()?;
                            out.raw.push((t, v));
                        }
                        Kind::Matrix => m.next_value_seed(ValuesSeed(&mut out.raw))?,
                    }
                }
                _ => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if !values {
            return Err(M::Error::missing_field(field));
        }
        out.close_labels(pairs_start);
        out.ends.push((out.pairs.len(), out.raw.len()));
        Ok(())
    }
}

/// A `metric` object: its pairs appended in body order, `__name__` left out.
struct MetricSeed<'b, 'a>(&'b mut Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for MetricSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for MetricSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of label names and values")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        while let Some((Str(k), Str(v))) = m.next_entry::<Str<'a>, Str<'a>>()? {
            if k != "__name__" {
                self.0.push((k, v));
            }
        }
        Ok(())
    }
}

/// A range series' `values`: `[<unix seconds>, "<value>"]` pairs appended as sent.
struct ValuesSeed<'b, 'a>(&'b mut Vec<(f64, Cow<'a, str>)>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for ValuesSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for ValuesSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [time, value] pairs")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut s: S) -> Result<(), S::Error> {
        while let Some((t, Str(v))) = s.next_element::<(f64, Str<'a>)>()? {
            self.0.push((t, v));
        }
        Ok(())
    }
}

/// A string borrowed from the body unless it has escapes: a 1,000-series answer then costs
/// no allocation per label.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V).map(Str)
    }
}

/// A sample from the API's `[<unix seconds>, "<value>"]`.
fn sample(labels: LabelPairs<'_, '_>, t: f64, v: &str) -> Result<Sample, QueryError> {
    let value = v
        .parse::<f64>()
        .map_err(|_| QueryError::Json(format!("`{v}` is not a number")))?;
    if !value.is_finite() {
        return Err(QueryError::NonFinite {
            labels: labels.to_labels().to_string(),
            value: v.to_string(),
        });
    }
    if !t.is_finite() {
        return Err(QueryError::Json(format!("`{t}` is not a timestamp")));
    }
    Ok(Sample {
        t: Timestamp((t * 1000.0).round() as i64),
        v: value,
    })
}

/// Seconds since the epoch as the API takes them (`1700000000.123`).
fn api_time(t: Timestamp) -> String {
    let (s, ms) = (t.0.div_euclid(1000), t.0.rem_euclid(1000));
    format!("{s}.{ms:03}")
}

/// A configured datasource, ready to query.
#[derive(Debug)]
pub struct Datasource {
    /// Its name (for logs and metrics).
    pub name: String,
    base: String,
    client: reqwest::Client,
}

impl Datasource {
    /// The client for `cfg`: headers, basic auth or bearer token and the time limit are
    /// set once on the client. `config` has checked URL and headers; an error here names
    /// the problem without the values.
    pub fn new(cfg: &DatasourceConfig) -> Result<Datasource, String> {
        let headers = auth_headers(
            cfg.headers.iter().map(|(k, v)| (k.as_str(), v.expose())),
            cfg.basic_auth
                .as_ref()
                .map(|b| (b.username.expose(), b.password.expose())),
            cfg.bearer_token.as_ref().map(|t| t.expose()),
        )?;
        let timeout = cfg.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |d| d.value.0);
        let client = crate::http_client::builder()
            .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Datasource {
            name: cfg.name.expose().to_string(),
            base: cfg.url.expose().trim_end_matches('/').to_string(),
            client,
        })
    }

    /// `query` evaluated at `at`: the answer's body, to decode with [`Answer::vector`]
    /// (or [`decode_instant`]) where it is used, so that the series can borrow from it.
    pub async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<u8>, QueryError> {
        let url = format!("{}/api/v1/query", self.base);
        self.get(&url, &[("query", query), ("time", &api_time(at))]).await
    }

    /// `query` evaluated every `step` from `start` to `end`.
    pub async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
        max_series: usize,
    ) -> Result<Vec<Series>, QueryError> {
        let url = format!("{}/api/v1/query_range", self.base);
        let step = format!("{:.3}", step.as_secs_f64().max(0.001));
        let params = [
            ("query", query),
            ("start", &api_time(start)),
            ("end", &api_time(end)),
            ("step", &step),
        ];
        let body = self.get(&url, &params).await?;
        decode_range(&body, max_series)
    }

    async fn get(&self, url: &str, params: &[(&str, &str)]) -> Result<Vec<u8>, QueryError> {
        let url = reqwest::Url::parse_with_params(url, params)
            .map_err(|e| QueryError::Connection(format!("invalid URL: {e}")))?;
        let mut resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(QueryError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        // Prometheus answers a bad query with 400 and a JSON error: that message is the one
        // worth logging.
        if !status.is_success() {
            if let Err(api @ QueryError::Api { .. }) = Answer::vector(&body, usize::MAX) {
                return Err(api);
            }
            body.truncate(ERROR_BODY);
            return Err(QueryError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Ok(body)
    }
}

/// Headers of an HTTP endpoint with credentials: the extra headers, then `Authorization`
/// from basic auth or a bearer token. Credentials are marked sensitive, so the HTTP client
/// never prints them.
pub fn auth_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    basic: Option<(&str, &str)>,
    bearer: Option<&str>,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))?;
        let mut v = HeaderValue::from_str(value).map_err(|_| format!("the value of header `{name}` is not valid"))?;
        v.set_sensitive(true);
        map.insert(n, v);
    }
    if let Some(auth) = crate::config::authorization(basic, bearer) {
        let mut v =
            HeaderValue::from_str(&auth).map_err(|_| "the credentials are not a valid header value".to_string())?;
        v.set_sensitive(true);
        map.insert(AUTHORIZATION, v);
    }
    Ok(map)
}

fn request_error(e: reqwest::Error) -> QueryError {
    if e.is_timeout() {
        QueryError::Timeout
    } else {
        // Without the URL: it may carry credentials.
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        QueryError::Connection(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(items: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{items}]}}}}"#)
    }

    #[test]
    fn an_instant_vector_decodes_into_labels_and_one_sample() {
        let body = vector(
            r#"{"metric":{"__name__":"up","job":"node","instance":"a:9100"},"value":[1700000000.5,"1"]},
               {"metric":{},"value":[1700000000.5,"-2.5e3"]}"#,
        );
        let got = decode_instant(body.as_bytes(), 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].labels,
            Labels::from_pairs([("instance", "a:9100"), ("job", "node")])
        );
        assert_eq!(
            got[0].samples,
            [Sample {
                t: Timestamp(1_700_000_000_500),
                v: 1.0
            }]
        );
        assert!(got[1].labels.is_empty());
        assert_eq!(got[1].samples[0].v, -2500.0);
    }

    #[test]
    fn a_matrix_decodes_every_sample_in_order() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"b"},"values":[[10,"1"],[25,"2"]]}]}}"#;
        let got = decode_range(body.as_bytes(), 10).unwrap();
        let ts: Vec<i64> = got[0].samples.iter().map(|s| s.t.0).collect();
        assert_eq!(ts, [10_000, 25_000]);
    }

    #[test]
    fn every_unusable_answer_is_its_own_error() {
        let not_json = decode_instant(b"<html>oops</html>", 10).unwrap_err();
        assert!(matches!(not_json, QueryError::Json(_)), "{not_json:?}");
        let cut = decode_instant(&vector(r#"{"metric":{},"value":[1,"1"]}"#).as_bytes()[..40], 10).unwrap_err();
        assert!(matches!(cut, QueryError::Json(_)), "{cut:?}");
        let api = decode_instant(
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
            10,
        )
        .unwrap_err();
        assert_eq!(
            api,
            QueryError::Api {
                kind: "bad_data".into(),
                message: "parse error at char 3".into()
            }
        );
        let scalar = decode_instant(
            br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
            10,
        )
        .unwrap_err();
        assert!(scalar.to_string().contains("vector(...)"), "{scalar}");
        let matrix = decode_instant(
            br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            10,
        )
        .unwrap_err();
        assert_eq!(
            matrix,
            QueryError::ResultType {
                expected: "vector",
                got: "matrix".into()
            }
        );
        for v in ["NaN", "+Inf", "-Inf"] {
            let body = vector(&format!(r#"{{"metric":{{"x":"y"}},"value":[1,"{v}"]}}"#));
            let err = decode_instant(body.as_bytes(), 10).unwrap_err();
            assert!(matches!(err, QueryError::NonFinite { .. }), "{v}: {err:?}");
            assert!(err.to_string().contains(r#"x="y""#), "{err}");
        }
        let three = vector(r#"{"value":[1,"1"]},{"value":[1,"1"]},{"value":[1,"1"]}"#);
        assert_eq!(
            decode_instant(three.as_bytes(), 2).unwrap_err(),
            QueryError::TooManySeries { got: 3, max: 2 }
        );
        assert_eq!(decode_instant(three.as_bytes(), 3).unwrap().len(), 3);
    }

    #[test]
    fn fields_may_come_in_any_order_and_labels_end_up_sorted() {
        // `result` before `resultType`, `data` before `status`, `value` before `metric`.
        let body = br#"{"data":{"result":[{"value":[1,"2"],"metric":{"z":"1","__name__":"m","a":"2","a":"3"}}],
            "resultType":"vector"},"status":"success","warnings":["w"]}"#;
        let got = Answer::vector(body, 10).unwrap();
        let (labels, samples) = got.iter().next().unwrap();
        // A later duplicate name wins, as in `Labels::from_pairs`.
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "3"), ("z", "1")]);
        assert!(labels.equals(&Labels::from_pairs([("z", "1"), ("a", "3")])));
        assert_eq!(
            samples,
            [Sample {
                t: Timestamp(1000),
                v: 2.0
            }]
        );
        let late = br#"{"status":"success","data":{"result":[[1,"2"]],"resultType":"matrix"}}"#;
        assert_eq!(
            decode_instant(late, 10).unwrap_err(),
            QueryError::ResultType {
                expected: "vector",
                got: "matrix".into()
            }
        );
        let escaped = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"p":"a\"b"},"values":[[1,"1"]]}]}}"#;
        assert_eq!(decode_range(escaped, 10).unwrap()[0].labels.get("p"), Some("a\"b"));
        for bad in [
            &br#"{"status":"success","data":{"resultType":"vector"}}"#[..],
            br#"{"status":"success","data":{"result":[]}}"#,
            br#"{"data":{"resultType":"vector","result":[]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
        ] {
            let err = decode_instant(bad, 10).unwrap_err();
            assert!(matches!(err, QueryError::Json(_)), "{err:?}");
        }
    }

    #[test]
    fn too_many_series_counts_them_all() {
        let items = [r#"{"metric":{},"value":[1,"1"]}"#; 7].join(",");
        assert_eq!(
            decode_instant(vector(&items).as_bytes(), 2).unwrap_err(),
            QueryError::TooManySeries { got: 7, max: 2 }
        );
    }

    #[test]
    fn credentials_become_one_sensitive_authorization_header() {
        let h = auth_headers([("X-Scope-OrgID", "team-a")], Some(("Aladdin", "open sesame")), None).unwrap();
        assert_eq!(h["authorization"], "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h["x-scope-orgid"], "team-a");
        let h = auth_headers([], None, Some("t0k")).unwrap();
        assert_eq!(h["authorization"], "Bearer t0k");
    }

    #[test]
    fn api_times_are_seconds_with_milliseconds() {
        assert_eq!(api_time(Timestamp(1_700_000_000_005)), "1700000000.005");
        assert_eq!(api_time(Timestamp(0)), "0.000");
    }

    proptest::proptest! {
        /// Whatever the body, decoding returns a value or an error, never panics; and a
        /// vector written from series decodes back into exactly those series.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode_instant(&body, 5);
            let _ = decode_range(&body, 5);
        }

        #[test]
        fn written_vectors_decode_back(
            series in proptest::collection::vec(
                (proptest::collection::btree_map("[a-z_]{1,6}", "[ -~]{0,8}", 0..4), -1e12f64..1e12, 0i64..4_000_000_000_000),
                0..8,
            ),
        ) {
            let items: Vec<serde_json::Value> = series
                .iter()
                .map(|(labels, v, t)| serde_json::json!({
                    "metric": labels,
                    "value": [*t as f64 / 1000.0, format!("{v}")],
                }))
                .collect();
            let body = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": items}});
            let got = decode_instant(body.to_string().as_bytes(), 8).unwrap();
            proptest::prop_assert_eq!(got.len(), series.len());
            for (g, (labels, v, t)) in got.iter().zip(&series) {
                let want = Labels::from_pairs(labels.iter().filter(|(k, _)| k.as_str() != "__name__"));
                proptest::prop_assert_eq!(&g.labels, &want);
                proptest::prop_assert_eq!(g.samples[0].v, *v);
                proptest::prop_assert!((g.samples[0].t.0 - t).abs() <= 1);
            }
        }
    }
}
