//! Datasources: Prometheus-compatible HTTP query APIs (Prometheus, VictoriaMetrics, Thanos,
//! Mimir) that `query` sources read from.
//!
//! Owns the HTTP side ([`Datasource`]: `GET /api/v1/query` and `/api/v1/query_range` with
//! the configured headers, basic auth or bearer token and time limit) and the pure decoding
//! of their JSON answers ([`decode_instant`], [`decode_range`]) into `(labels, samples)`.
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

/// The API's envelope; fields borrowed from the body where it has no escapes.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default, rename = "errorType", borrow)]
    error_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow)]
    result: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct InstantItem<'a> {
    #[serde(default, borrow)]
    metric: Pairs<'a>,
    #[serde(borrow)]
    value: (f64, Str<'a>),
}

#[derive(Deserialize)]
struct RangeItem<'a> {
    #[serde(default, borrow)]
    metric: Pairs<'a>,
    #[serde(borrow)]
    values: Vec<(f64, Str<'a>)>,
}

/// A string borrowed from the body unless it has escapes: a 1,000-series answer then costs
/// no allocation per label before the labels are built.
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

/// A `metric` object as its pairs, in body order (`Labels` sorts them).
#[derive(Default)]
struct Pairs<'a>(Vec<(Str<'a>, Str<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label names and values")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(pair) = m.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The `data.result` of a successful answer of `expected` type.
fn result<'a>(body: &'a [u8], expected: &'static str) -> Result<&'a str, QueryError> {
    let env: Envelope<'a> = serde_json::from_slice(body).map_err(|e| QueryError::Json(e.to_string()))?;
    if env.status != "success" {
        return Err(QueryError::Api {
            kind: env.error_type.map_or_else(|| env.status.to_string(), Cow::into_owned),
            message: env.error.map(Cow::into_owned).unwrap_or_default(),
        });
    }
    let data = env
        .data
        .ok_or_else(|| QueryError::Json("a success without `data`".into()))?;
    if data.result_type != expected {
        return Err(QueryError::ResultType {
            expected,
            got: data.result_type.into_owned(),
        });
    }
    Ok(data.result.get())
}

fn labels(metric: &Pairs<'_>) -> Labels {
    Labels::from_pairs(
        metric
            .0
            .iter()
            .filter(|(k, _)| k.0 != "__name__")
            .map(|(k, v)| (k.0.as_ref(), v.0.as_ref())),
    )
}

/// A sample from the API's `[<unix seconds>, "<value>"]`.
fn sample(labels: &Labels, (t, Str(v)): &(f64, Str<'_>)) -> Result<Sample, QueryError> {
    let value = v
        .parse::<f64>()
        .map_err(|_| QueryError::Json(format!("`{v}` is not a number")))?;
    if !value.is_finite() {
        return Err(QueryError::NonFinite {
            labels: labels_text(labels),
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

fn labels_text(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Decodes the answer of an instant query (`resultType` `vector`): one sample per series.
/// More than `max_series` series, or any unusable value, fails the whole answer: storing
/// part of a vector would make the missing series look stale for the wrong reason.
pub fn decode_instant(body: &[u8], max_series: usize) -> Result<Vec<Series>, QueryError> {
    let raw = result(body, "vector")?;
    let items: Vec<InstantItem<'_>> = serde_json::from_str(raw).map_err(|e| QueryError::Json(e.to_string()))?;
    if items.len() > max_series {
        return Err(QueryError::TooManySeries {
            got: items.len(),
            max: max_series,
        });
    }
    items
        .iter()
        .map(|item| {
            let labels = labels(&item.metric);
            let s = sample(&labels, &item.value)?;
            Ok(Series {
                labels,
                samples: vec![s],
            })
        })
        .collect()
}

/// Decodes the answer of a range query (`resultType` `matrix`), with the same limits as
/// [`decode_instant`].
pub fn decode_range(body: &[u8], max_series: usize) -> Result<Vec<Series>, QueryError> {
    let raw = result(body, "matrix")?;
    let items: Vec<RangeItem<'_>> = serde_json::from_str(raw).map_err(|e| QueryError::Json(e.to_string()))?;
    if items.len() > max_series {
        return Err(QueryError::TooManySeries {
            got: items.len(),
            max: max_series,
        });
    }
    items
        .iter()
        .map(|item| {
            let labels = labels(&item.metric);
            let samples = item
                .values
                .iter()
                .map(|v| sample(&labels, v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Series { labels, samples })
        })
        .collect()
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

    /// `query` evaluated at `at`: every series with its one sample.
    pub async fn instant(&self, query: &str, at: Timestamp, max_series: usize) -> Result<Vec<Series>, QueryError> {
        let url = format!("{}/api/v1/query", self.base);
        let body = self.get(&url, &[("query", query), ("time", &api_time(at))]).await?;
        decode_instant(&body, max_series)
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
            if let Err(api @ QueryError::Api { .. }) = result(&body, "vector") {
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
