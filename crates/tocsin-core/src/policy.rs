//! The policy compiler: parsed receiver files (receivers, time intervals, routes, inhibit
//! rules) → one
//! checked [`Policy`] plus every finding.
//!
//! `check`, the daemon's start and reload (through `check::validate`) and `tocsin test` all
//! compile receiver files here and nowhere else, so what `check` accepts is exactly what
//! runs: the dispatcher gets matchers that compiled ([`RoutingTable`]), the outbox and
//! renderers get receivers whose templates compiled ([`Receivers`]), and nothing invalid is
//! dropped on the way: each problem is a located diagnostic, and a policy with an error is
//! never run. Pure: files arrive parsed, findings leave as values.
//!
//! The steps run in dependency order: receivers and time intervals first (routes and
//! `notify:` name them), then what names them (routes, then inhibit rules); a new section of
//! receiver files is a new step here, before the routes when routes refer to it.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::{ReceiverFile, RouteDef};
use crate::diag::Diagnostic;
use crate::receivers::Receivers;
use crate::route::{BadMatcher, LabelMatchers, ReceiverPolicy, RoutingTable, compile_matchers, intervals};

/// A checked receiver policy, ready to run.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The compiled receivers and their templates.
    pub receivers: Arc<Receivers>,
    /// Routes, inhibit rules and per-receiver dispatch settings, for the dispatcher.
    pub routing: RoutingTable,
}

/// What [`compile`] found and built.
#[derive(Debug)]
pub struct Compiled {
    /// The policy; run it only when `diagnostics` holds no error.
    pub policy: Policy,
    /// Every finding, errors and warnings, located in its file.
    pub diagnostics: Vec<Diagnostic>,
}

/// Compiles receiver files. `notified` names the receivers rules reach with `notify:`, so
/// that only a receiver neither a route nor a rule reaches is warned about.
pub fn compile(files: &[(String, ReceiverFile)], notified: &BTreeSet<String>) -> Compiled {
    let mut diagnostics = Vec::new();
    let receivers = Receivers::compile(files, &mut diagnostics);
    let mut routing = RoutingTable::default();
    // Time intervals first: routes name them.
    diagnostics.extend(intervals::check_files(files));
    routing.intervals = intervals::Intervals::compile(files);
    // Routing sees receivers by the names routes use: a cluster's streams are one receiver.
    let names = receivers
        .list
        .iter()
        .map(|r| r.name.as_str())
        .chain(receivers.peers.keys().map(String::as_str));
    for name in names {
        let Some(r) = receivers.named(name) else { continue };
        routing.add_receiver(
            name.to_string(),
            ReceiverPolicy {
                send_resolved: r.send_resolved,
                resend: r.kind.resend(),
            },
        );
    }
    let mut reached: BTreeSet<&str> = notified.iter().map(String::as_str).collect();
    for (path, file) in files {
        for route in &file.routes {
            reached.extend(route_receivers(path, route, &receivers, &mut diagnostics));
            if let Some(m) = matchers(path, &route.r#match, &mut diagnostics) {
                routing.add_route(route.value.clone(), m);
            }
        }
        for rule in &file.inhibit_rules {
            let source = matchers(path, &rule.source, &mut diagnostics);
            let target = matchers(path, &rule.target, &mut diagnostics);
            if let (Some(source), Some(target)) = (source, target) {
                routing.add_inhibit(rule, source, target);
            }
        }
    }
    for (path, file) in files {
        for def in &file.receivers {
            let name = def.name.expose();
            if !reached.contains(name) && receivers.named(name).is_some() {
                diagnostics.push(
                    Diagnostic::warning(
                        path,
                        def.name.line(),
                        def.name.column(),
                        "unreached-receiver",
                        format!("no route reaches receiver `{name}`"),
                    )
                    .with_hint("add a route to it, or name it in a rule's `notify:`"),
                );
                // A repeated definition is reported as such, not as unreached twice.
                reached.insert(name);
            }
        }
    }
    Compiled {
        policy: Policy {
            receivers: Arc::new(receivers),
            routing,
        },
        diagnostics,
    }
}

/// The receivers a route names that exist; each other one is an error with "did you mean".
fn route_receivers<'a>(
    path: &str,
    route: &'a RouteDef,
    receivers: &Receivers,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<&'a str> {
    let mut found = Vec::new();
    for name in &route.receivers {
        let name_s = name.expose();
        if receivers.named(name_s).is_some() {
            found.push(name_s);
            continue;
        }
        let mut d = Diagnostic::error(
            path,
            name.line(),
            name.column(),
            "unknown-receiver",
            format!("route names receiver `{name_s}`, which is not defined"),
        );
        d.hint = receivers
            .list
            .iter()
            .map(|r| (strsim::jaro_winkler(name_s, &r.name), &r.name))
            .filter(|(s, _)| *s > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| format!("did you mean `{k}`?"));
        diagnostics.push(d);
    }
    found
}

/// A compiled `match`-style map, or `None` after reporting each invalid value.
fn matchers(
    path: &str,
    map: &std::collections::BTreeMap<String, crate::config::MatchValue>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<LabelMatchers> {
    compile_matchers(map)
        .map_err(|bad| {
            for BadMatcher { label, value, message } in bad {
                diagnostics.push(Diagnostic::error(
                    path,
                    value.line(),
                    value.column(),
                    "match",
                    format!("invalid regex for `{label}`: {message}"),
                ));
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse_receivers};

    fn compile_yaml(yaml: &str) -> Compiled {
        let file = parse_receivers(&Source::new("r.yaml", yaml.as_bytes().to_vec()).unwrap(), &|_| None).unwrap();
        compile(&[("r.yaml".to_string(), file)], &BTreeSet::new())
    }

    fn found(c: &Compiled) -> Vec<(u64, u64, &str)> {
        c.diagnostics.iter().map(|d| (d.line, d.column, d.code)).collect()
    }

    #[test]
    fn an_invalid_inhibit_regex_is_reported_even_without_routes() {
        // Before the policy compiler, inhibit matchers were checked only inside the loop
        // over routes, so a file without routes ran an inhibit rule whose regex was dropped.
        let c = compile_yaml(
            "receivers:\n  - name: c\n    console: {}\ninhibit_rules:\n  - source: { alertname: '~(' }\n    target: { severity: warning }\n",
        );
        assert_eq!(
            found(&c),
            [(5, 26, "match"), (2, 11, "unreached-receiver")],
            "{:?}",
            c.diagnostics
        );
        assert!(c.policy.routing.inhibit.is_empty(), "nothing invalid runs");
    }

    #[test]
    fn each_invalid_regex_is_reported_once_with_several_routes() {
        let c = compile_yaml(
            "receivers:\n  - name: c\n    console: {}\nroutes:\n  - match: { a: '~[' }\n    receivers: [c]\n  - receivers: [c]\ninhibit_rules:\n  - source: { b: '~(' }\n",
        );
        assert_eq!(found(&c), [(5, 17, "match"), (9, 18, "match")], "{:?}", c.diagnostics);
        assert_eq!(c.policy.routing.routes.len(), 1, "the route that compiled");
    }

    #[test]
    fn templates_that_do_not_compile_and_repeated_names_are_errors_not_skipped() {
        let c = compile_yaml(
            "receivers:\n  - name: chat\n    slack: { webhook_url: 'http://s', title: '{{ nope' }\n  - name: chat\n    console: {}\nroutes:\n  - receivers: [chat, chatt]\n",
        );
        let got: Vec<(u64, &str, &str)> = c
            .diagnostics
            .iter()
            .map(|d| (d.line, d.code, d.hint.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (3, "template", ""),
                (4, "duplicate-receiver", ""),
                (7, "unknown-receiver", "did you mean `chat`?")
            ],
            "{:?}",
            c.diagnostics
        );
        assert_eq!(c.policy.receivers.list.len(), 1);
    }

    #[test]
    fn dispatch_settings_come_from_the_compiled_receivers() {
        let c = compile_yaml(
            "receivers:\n  - name: am\n    send_resolved: false\n    alertmanager: { url: 'http://am:9093', resend_interval: 30s }\n  - name: pd\n    pagerduty: { routing_key: k }\nroutes:\n  - receivers: [am, pd]\n",
        );
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        let r = &c.policy.routing.receivers;
        assert_eq!(
            r["am"],
            ReceiverPolicy {
                send_resolved: false,
                resend: Some(std::time::Duration::from_secs(30))
            }
        );
        assert_eq!(r["pd"], ReceiverPolicy::default());
    }
}
