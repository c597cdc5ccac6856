//! Templates: Jinja (minijinja) text for annotations and receiver messages.
//!
//! Owns compiling template sources once, rendering them with a fuel limit (a template can
//! never spin forever), and the plain fallback text used when rendering fails (a
//! broken template never blackholes an alert). It knows nothing about rules or receivers:
//! callers hand it a [`Context`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// Instructions a single render may execute before it is stopped.
const FUEL: u64 = 100_000;

/// The variables every template sees.
pub const VARIABLES: &[&str] = &[
    "alertname",
    "status",
    "severity",
    "value",
    "threshold",
    "labels",
    "annotations",
    "starts_at",
    "alerts",
    "nodata",
];

/// What a template is rendered against.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Context {
    /// The alert's name.
    pub alertname: String,
    /// `firing` or `resolved` (or `pending` for annotations of a pending instance).
    pub status: String,
    /// The severity of the tier the instance is (or was last) at.
    pub severity: String,
    /// The expression's value, when it had one.
    pub value: Option<f64>,
    /// The threshold of the current tier, for numeric tiers.
    pub threshold: Option<f64>,
    /// The instance's labels.
    pub labels: BTreeMap<String, String>,
    /// Rendered annotations (empty while rendering the annotations themselves).
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 start of the episode, when there is one.
    pub starts_at: Option<String>,
    /// The alerts of a notification group (receivers only).
    pub alerts: Vec<Context>,
    /// Raised by `no_data: alert` (a flag, never a label).
    pub nodata: bool,
}

/// Where a template is kept inside a [`Templates`] set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TemplateRef(usize);

/// A template that does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// minijinja's description of the problem.
    pub message: String,
    /// 1-based line inside the template source, when known.
    pub line: Option<usize>,
}

/// A set of templates sharing one environment. Each is checked (compiled) when added, but
/// kept compiled only once it first renders: minijinja reserves about 12 KiB of instruction
/// buffers per compiled template, and most rules' annotations never render (their alerts
/// never fire), so a thousand distinct ones would otherwise cost 12 MiB for nothing.
pub struct Templates {
    env: Environment<'static>,
    /// Sources by [`TemplateRef`], read by the environment's loader on first render.
    sources: Arc<RwLock<Vec<Arc<str>>>>,
    /// Already added sources: the same annotation text on many rules is one template.
    by_source: std::collections::HashMap<Arc<str>, TemplateRef>,
    /// Per template, the variables it reads that templates do not have.
    unknown: Vec<Vec<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("count", &self.unknown.len()).finish()
    }
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

/// The environment's name of template `t`.
fn name(t: TemplateRef) -> String {
    format!("t{}", t.0)
}

impl Templates {
    /// An empty set with fuel and recursion limits.
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        // Missing keys render empty at run time, as operators expect from Alertmanager
        // templates; `check` reports them separately as warnings.
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        let sources: Arc<RwLock<Vec<Arc<str>>>> = Arc::default();
        let shared = Arc::clone(&sources);
        env.set_loader(move |name| {
            let i = name.strip_prefix('t').and_then(|i| i.parse::<usize>().ok());
            let list = shared.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(i.and_then(|i| list.get(i)).map(|s| s.to_string()))
        });
        Templates {
            env,
            sources,
            by_source: std::collections::HashMap::new(),
            unknown: Vec::new(),
        }
    }

    /// Checks `source` and adds it to the set.
    pub fn add(&mut self, source: &str) -> Result<TemplateRef, TemplateError> {
        self.add_shared(source).map(|(t, _)| t)
    }

    /// [`Templates::add`], also handing out the set's own copy of the source, for a caller
    /// that keeps the text as long as the set (rules do, for the fallback text): one copy
    /// however many rules share it.
    pub fn add_shared(&mut self, source: &str) -> Result<(TemplateRef, Arc<str>), TemplateError> {
        if let Some((shared, t)) = self.by_source.get_key_value(source) {
            return Ok((*t, Arc::clone(shared)));
        }
        // Compiled here only to be checked and read for its variables, in an environment of
        // its own (compiling depends on the syntax alone, which both leave at the default).
        let unknown = {
            let check = Environment::empty();
            let tmpl = check.template_from_str(source).map_err(to_error)?;
            let mut unknown: Vec<String> = tmpl
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !VARIABLES.contains(&v.as_str()))
                .collect();
            unknown.sort();
            unknown
        };
        let t = TemplateRef(self.unknown.len());
        let shared: Arc<str> = Arc::from(source);
        self.sources
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&shared));
        self.by_source.insert(Arc::clone(&shared), t);
        self.unknown.push(unknown);
        Ok((t, shared))
    }

    /// Renders a template; errors (fuel exhausted, bad filter argument, …) as text.
    pub fn render(&self, t: TemplateRef, ctx: &Context) -> Result<String, TemplateError> {
        let tmpl = self.env.get_template(&name(t)).map_err(to_error)?;
        tmpl.render(minijinja::value::Serde(ctx)).map_err(to_error)
    }

    /// Renders, or on failure returns a plain fallback naming the error and `Err` with it,
    /// so the caller can count the failure and still deliver.
    pub fn render_or_fallback(&self, t: TemplateRef, ctx: &Context, raw: &str) -> (String, Option<TemplateError>) {
        match self.render(t, ctx) {
            Ok(s) => (s, None),
            Err(e) => (
                format!(
                    "[template error: {}] {} {} ({}): {}",
                    e.message, ctx.alertname, ctx.status, ctx.severity, raw
                ),
                Some(e),
            ),
        }
    }

    /// The source text `t` was compiled from. A linear scan: meant for the few receiver
    /// templates and error paths, not for per-sample work.
    pub fn source(&self, t: TemplateRef) -> Option<&str> {
        self.by_source.iter().find(|(_, r)| **r == t).map(|(s, _)| &**s)
    }

    /// Top-level variables the template reads that are not in [`VARIABLES`].
    pub fn unknown_variables(&self, t: TemplateRef) -> &[String] {
        self.unknown.get(t.0).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn to_error(e: minijinja::Error) -> TemplateError {
    let message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateError {
        message,
        line: e.line(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            alertname: "MemoryPressure".into(),
            status: "firing".into(),
            severity: "critical".into(),
            value: Some(92.345),
            ..Context::default()
        }
    }

    #[test]
    fn renders_value_with_filters() {
        let mut t = Templates::new();
        let r = t
            .add("Memory usage is {{ value | round(1) }}% ({{ severity | upper }})")
            .unwrap();
        assert_eq!(t.render(r, &ctx()).unwrap(), "Memory usage is 92.3% (CRITICAL)");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let mut t = Templates::new();
        let e = t.add("ok\n{{ value | }}").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn runaway_loops_run_out_of_fuel_and_fall_back() {
        let mut t = Templates::new();
        let r = t
            .add("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")
            .unwrap();
        let (text, err) = t.render_or_fallback(r, &ctx(), "raw");
        assert!(err.is_some());
        assert!(text.starts_with("[template error:"), "{text}");
        assert!(text.contains("MemoryPressure"));
    }

    #[test]
    fn unknown_variables_are_listed() {
        let mut t = Templates::new();
        let r = t.add("{{ valeu }} {{ labels.host }} {% set x = 1 %}{{ x }}").unwrap();
        assert_eq!(t.unknown_variables(r), vec!["valeu".to_string()]);
    }
}
