//! The status page in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver, spoken to with the harness' HTTP client), against a real daemon with
//! firing, pending, no-data and hostile-labelled alerts. Screenshots go to
//! `target/screenshots/`.
//!
//! Without `chromium` and `chromedriver` the test is skipped, unless `CI` is set: there a
//! missing browser fails it (`.ci/run` installs both).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Daemon, Env, free_port, request, rules_file, wait_for, write};
use serde_json::{Value, json};

const S15: Duration = Duration::from_secs(15);
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const HOSTILE: &str = "<img src=x onerror=window.__pwned=1>";

/// A chromedriver process and one headless session; both end when dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// `None` (skip) only when the browser is missing and `CI` is unset.
    fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have {CHROMIUM} and {CHROMEDRIVER}"
            );
            eprintln!("skipped: {CHROMIUM} or {CHROMEDRIVER} is not installed");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        wait_for(S15, || {
            request(port, "GET", "/status", &[], b"")
                .ok()
                .filter(|r| r.status == 200 && r.json()["value"]["ready"] == true)
        })
        .expect("chromedriver becomes ready");
        // Root (CI) needs --no-sandbox; the window is tall so one screenshot shows the page.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,2200"]
            }
        }}});
        let created = b.call("POST", "/session", &caps);
        b.session = created["sessionId"].as_str().expect("a session id").to_string();
        Some(b)
    }

    /// One WebDriver command; its `value`. Fails the test on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = if method == "GET" || method == "DELETE" {
            String::new()
        } else {
            body.to_string()
        };
        let r = request(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let v = r.json();
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn open(&self, url: &str) {
        self.call("POST", &self.at("/url"), &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` as in WebDriver) and returns its value.
    fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            &json!({ "script": script, "args": args }),
        )
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait_js(&self, what: &str, script: &str) -> Value {
        wait_for(S15, || {
            let v = self.js(script, json!([]));
            let truthy = !(v.is_null() || v == false || v == 0 || v == "" || v == json!([]));
            truthy.then_some(v)
        })
        .unwrap_or_else(|| panic!("the page never showed {what}; body text:\n{}", self.text("body")))
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.at("/element"),
            &json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &self.at(&format!("/element/{e}/click")), &json!({}));
    }

    /// Replaces the text of the input `css` by typing `text`.
    fn fill(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call("POST", &self.at(&format!("/element/{e}/clear")), &json!({}));
        self.call(
            "POST",
            &self.at(&format!("/element/{e}/value")),
            &json!({ "text": text }),
        );
    }

    fn text(&self, css: &str) -> String {
        let v = self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            json!([css]),
        );
        v.as_str().unwrap_or_default().to_string()
    }

    fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.at("/window/rect"),
            &json!({"width": width, "height": height}),
        );
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>.png`.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = base64_decode(
            self.call("GET", &self.at("/screenshot"), &Value::Null)
                .as_str()
                .unwrap(),
        );
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(self.port, "DELETE", &format!("/session/{}", self.session), &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (WebDriver's screenshots), padding and line breaks ignored.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b'=' | b'\n' | b'\r'))
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | u32::from(d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

const RULES: &str = "      - alert: Hot
        expr: temp
        tiers:
          - { severity: warning, above: 50 }
          - { severity: critical, above: 80, for: 1h }
        annotations:
          summary: \"temperature is {{ value }}\"
      - alert: Slow
        expr: queue
        tiers:
          - { severity: warning, above: 10, for: 1h }
      - alert: Quiet
        expr: heartbeat
        no_data: alert
        tiers:
          - { severity: warning, above: 10 }
";

fn daemon() -> (Env, Daemon) {
    let env = Env::new("api_token: t0k\nhistory_resolution: 1s\n", None, &rules_file(RULES));
    let d = env.spawn(&[]);
    let auth = [("Authorization", "Bearer t0k")];
    // A heartbeat from ten minutes ago is stale at once: Quiet fires without data.
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 600_000;
    for v in [55, 90] {
        let body = format!(
            "temp{{host=\"a\"}} {v}\ntemp{{host=\"{HOSTILE}\"}} 60\nqueue 20\nheartbeat{{host=\"h\"}} 1 {old}\n"
        );
        let r = d.post("/api/v1/push", &auth, body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        wait_for(S15, || {
            d.alerts()
                .into_iter()
                .find(|a| a["labels"]["host"] == "a" && a["value"] == v as f64)
        })
        .unwrap_or_else(|| panic!("{v} never evaluated: {:?}", d.alerts()));
    }
    d.wait_alert("Slow", "pending", S15);
    d.wait_alert("Quiet", "firing", S15);
    // The plots are drawn from closed steps: wait for the first ones.
    wait_for(S15, || {
        let s = d.get("/api/v1/series?rule=Hot").json();
        (s["series"].as_array().unwrap().len() == 2).then_some(())
    })
    .expect("value history for Hot");
    (env, d)
}

#[test]
fn an_operator_sees_the_alerts_their_history_and_silences_one() {
    let Some(b) = Browser::start() else { return };
    let (env, d) = daemon();
    let base = format!("http://127.0.0.1:{}/", d.port);
    b.open(&base);

    // Firing, pending and no-data alerts, each with what an operator needs to act on it.
    let cards = b.wait_js(
        "four alert cards",
        "const c = document.querySelectorAll('#alerts .alert'); return c.length === 4 ? c.length : 0;",
    );
    assert_eq!(cards, 4);
    let card = |host: &str| -> String {
        b.js(
            "for (const c of document.querySelectorAll('#alerts .alert')) if (c.innerText.includes(arguments[0])) return c.innerText; return '';",
            json!([host]),
        )
        .as_str()
        .unwrap()
        .to_string()
    };
    let hot = card("host=\"a\"");
    for needle in ["Hot", "firing", "warning", "90", "active since", "temperature is 90"] {
        assert!(hot.contains(needle), "{needle:?} missing from the Hot card:\n{hot}");
    }
    let slow = b.text("#alerts .alert.pending");
    assert!(slow.contains("Slow") && slow.contains("pending since"), "{slow}");
    assert!(
        slow.contains("fires in 59m") || slow.contains("fires in 1h"),
        "a `for` countdown: {slow}"
    );
    let quiet = card("host=\"h\"");
    assert!(quiet.contains("no data"), "{quiet}");
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#alerts .marker.nodata').length;",
            json!([])
        ),
        1
    );

    // A hostile label value is text: no element made of it, no script run.
    let hostile = card("onerror");
    assert!(
        hostile.contains(&format!("host={}", serde_json::to_string(HOSTILE).unwrap())),
        "{hostile}"
    );
    assert_eq!(b.js("return document.querySelectorAll('img').length;", json!([])), 0);
    assert_eq!(b.js("return typeof window.__pwned;", json!([])), "undefined");

    // Per rule a plot: each instance's values, the tiers as threshold lines, transitions as marks.
    let plot = b.wait_js(
        "Hot's plot",
        "const p = document.querySelector('.rule[data-rule=\"Hot\"] svg.plot'); if (!p) return null;
         const n = (s) => p.querySelectorAll(s).length;
         return n('g.series') && n('path.transition') ? [n('g.series'), n('line.threshold'), n('path.transition')] : null;",
    );
    assert_eq!(plot[0], 2, "two instances: {plot}");
    assert_eq!(plot[1], 2, "warning 50 and critical 80: {plot}");
    assert!(plot[2].as_u64().unwrap() >= 2, "a firing mark per instance: {plot}");
    let legend = b.text(".rule[data-rule=\"Hot\"] .legend");
    assert!(legend.contains("host=\"a\"") && legend.contains("firing"), "{legend}");
    assert!(b.text("#receivers").contains("console"), "delivery state per receiver");
    assert!(b.text("#reload").contains("Configuration loaded"));
    let desktop = b.screenshot("status-page");

    // Silencing needs the token: without it the page says why it did not work.
    b.fill("#sil-matchers", "alertname=Hot, host=\"a\"");
    b.fill("#sil-author", "ops");
    b.fill("#sil-comment", "looking into it");
    b.click("#sil-create");
    let refused = b.wait_js(
        "the refusal",
        "const t = document.getElementById('sil-result').innerText; return t.includes('not created') ? t : null;",
    );
    assert!(refused.as_str().unwrap().contains("Bearer"), "{refused}");
    b.fill("#token", "t0k");
    b.click("#sil-create");
    b.wait_js(
        "an active silence",
        "return document.querySelectorAll('#silences tr.silence.active').length;",
    );
    let silenced = b.wait_js(
        "the silenced marker",
        "for (const c of document.querySelectorAll('#alerts .alert')) if (c.querySelector('.marker.silenced')) return c.innerText; return null;",
    );
    assert!(silenced.as_str().unwrap().contains("host=\"a\""), "{silenced}");
    let api = d.get("/api/v1/silences").json();
    assert_eq!(api["silences"][0]["created_by"], "ops", "{api}");
    assert_eq!(api["silences"][0]["comment"], "looking into it", "{api}");
    assert_eq!(api["silences"][0]["matchers"].as_array().unwrap().len(), 2, "{api}");
    let with_silence = b.screenshot("status-page-silenced");

    // ... and expired from the page.
    b.click("#silences tr.silence.active button.expire");
    b.wait_js(
        "the expired silence",
        "return document.querySelectorAll('#silences tr.silence.expired').length;",
    );
    assert_eq!(d.get("/api/v1/silences").json()["silences"][0]["status"], "expired");
    b.wait_js(
        "no silenced marker",
        "return document.querySelectorAll('#alerts .marker.silenced').length === 0;",
    );

    // A notification's link lands on the alert's own view.
    let fp = d.alerts().into_iter().find(|a| a["labels"]["host"] == "a").unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    b.open(&format!("{base}#/alert/{fp}"));
    let view = b.wait_js(
        "the alert's view",
        "const v = document.getElementById('alert-view'); return !v.hidden && v.querySelector('svg.plot .series') ? v.innerText : null;",
    );
    assert!(view.as_str().unwrap().contains("temperature is 90"), "{view}");
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#alert-view .alert').length;",
            json!([])
        ),
        1,
        "only that alert"
    );
    let alert_view = b.screenshot("alert-view");

    // A reload that fails shows its diagnostic; the last good rules keep running.
    write(
        env.path(),
        "rules/r.yaml",
        "groups: [{ name: g, rules: [{ alert: X }] }]\n",
    );
    b.open(&base);
    assert_eq!(d.post("/-/reload", &[("Authorization", "Bearer t0k")], b"").status, 400);
    let failed = b.wait_js(
        "the failed reload",
        "const f = document.querySelector('#reload .reload-failed pre'); return f ? f.innerText : null;",
    );
    assert!(failed.as_str().unwrap().contains("r.yaml"), "{failed}");

    // Readable on a phone: nothing wider than the screen.
    b.resize(390, 2000);
    let overflow = b.wait_js(
        "a page as narrow as the phone",
        "return document.documentElement.scrollWidth <= window.innerWidth + 1 ? 'fits' : null;",
    );
    assert_eq!(overflow, "fits");
    let phone = b.screenshot("status-page-phone");
    for p in [desktop, with_silence, alert_view, phone] {
        assert!(std::fs::metadata(&p).unwrap().len() > 1000, "{}", p.display());
        println!("screenshot: {}", p.display());
    }
}
