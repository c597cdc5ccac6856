//! `scrape`: Prometheus text exposition over HTTP.
//!
//! Owns one HTTP GET per target per interval with a timeout, adding `job` and `instance`
//! labels, and the per-target meta series `up` and `scrape_duration_seconds`. Parsing is
//! the pure [`exposition`](super::exposition) module's; a malformed line is reported with
//! its number and the rest of the body kept.

use std::time::{Duration, Instant};

use super::{LineError, ParsedSample, exposition};
use crate::series::Labels;

/// Largest body read from a target; a larger one is an error rather than unbounded memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One scrape target.
#[derive(Debug)]
pub struct Target {
    /// The `job` label.
    pub job: String,
    /// The `instance` label (host:port of the URL).
    pub instance: String,
    url: reqwest::Url,
    client: reqwest::Client,
}

/// What one successful scrape produced.
#[derive(Debug)]
pub struct Scraped {
    /// The samples, with `job` and `instance` added.
    pub samples: Vec<ParsedSample>,
    /// Lines that could not be parsed (the rest was kept).
    pub errors: Vec<LineError>,
    /// How long the request and parsing took.
    pub duration: Duration,
}

impl Target {
    /// A target named `job` at `url`.
    pub fn new(job: &str, url: &str, timeout: Duration) -> Result<Target, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
        let host = url.host_str().ok_or_else(|| format!("URL `{url}` has no host"))?;
        let instance = match url.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Target {
            job: job.to_string(),
            instance,
            url,
            client,
        })
    }

    /// Fetches and parses the target once.
    pub async fn scrape(&self) -> Result<Scraped, String> {
        let started = Instant::now();
        let mut resp = self
            .client
            .get(self.url.clone())
            .header("Accept", "text/plain;version=0.0.4")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("body larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        let (mut samples, errors) = exposition::parse_lenient(&text);
        for s in &mut samples {
            self.label(&mut s.labels);
        }
        Ok(Scraped {
            samples,
            errors,
            duration: started.elapsed(),
        })
    }

    /// A meta series of this target (`up`, `scrape_duration_seconds`).
    pub fn meta(&self, name: &str, value: f64) -> ParsedSample {
        let mut labels = Labels::new();
        self.label(&mut labels);
        ParsedSample {
            name: name.to_string(),
            labels,
            value,
            timestamp_ms: None,
        }
    }

    /// Sets `job` and `instance`; a target's own labels of those names are kept as
    /// `exported_job`/`exported_instance`, as Prometheus does.
    fn label(&self, labels: &mut Labels) {
        for (name, value) in [("job", &self.job), ("instance", &self.instance)] {
            if let Some(old) = labels.get(name).map(str::to_string) {
                labels.set(&format!("exported_{name}"), &old);
            }
            labels.set(name, value);
        }
    }
}
