//! Routes: which receivers a notification goes to (SPEC §4).
//!
//! Owns matching a notification's labels against the ordered routes of the receiver files
//! (exact values, lists, anchored `~regex`; the first match wins unless it says
//! `continue: true`; a route without `match` catches everything) and the rule-level
//! `notify:` bypass. Pure: it sees labels and returns receiver names; it never sends.

use crate::config::ReceiverFile;
use crate::rules::Matcher;
use crate::series::Labels;

/// One compiled route.
#[derive(Debug)]
struct Route {
    /// Per label: the alternatives, any of which may match.
    matchers: Vec<(String, Vec<Matcher>)>,
    receivers: Vec<String>,
    cont: bool,
}

/// The routes of every receiver file, in file order.
#[derive(Debug, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Compiles routes. Invalid regexes never match (`check` reports them).
    pub fn compile(files: &[(String, ReceiverFile)]) -> Routes {
        let routes = files
            .iter()
            .flat_map(|(_, f)| f.routes.iter())
            .map(|r| Route {
                matchers: r
                    .r#match
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.0.iter().filter_map(|t| Matcher::parse(t.expose()).ok()).collect(),
                        )
                    })
                    .collect(),
                receivers: r.receivers.iter().map(|t| t.expose().to_string()).collect(),
                cont: r.r#continue,
            })
            .collect();
        Routes { routes }
    }

    /// The receivers for a notification with `labels`: the rule's own `notify:` list when it
    /// has one, else those of the matching routes. Each receiver appears once.
    pub fn receivers_for<'a>(&'a self, labels: &Labels, notify: &'a [String]) -> Vec<&'a str> {
        if !notify.is_empty() {
            return notify.iter().map(String::as_str).collect();
        }
        let mut out: Vec<&str> = Vec::new();
        for r in &self.routes {
            let matched = r
                .matchers
                .iter()
                .all(|(k, alts)| alts.iter().any(|m| m.matches(labels.get(k))));
            if !matched {
                continue;
            }
            for name in &r.receivers {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
            if !r.cont {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse_receivers};

    fn routes(yaml: &str) -> Routes {
        let f = parse_receivers(&Source::from_text("r.yaml", yaml).unwrap(), &|_| None).unwrap();
        Routes::compile(&[("r.yaml".into(), f)])
    }

    const FILE: &str = "receivers:\n  - { name: page, console: {} }\n  - { name: chat, console: {} }\n  - { name: all, console: {} }\nroutes:\n  - match: { severity: [critical, emergency] }\n    receivers: [page]\n    continue: true\n  - match: { team: '~infra.*' }\n    receivers: [chat]\n  - receivers: [all]\n";

    #[test]
    fn first_match_wins_unless_continue() {
        let r = routes(FILE);
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        assert_eq!(
            r.receivers_for(&l(&[("severity", "critical")]), &[]),
            vec!["page", "all"]
        );
        assert_eq!(
            r.receivers_for(&l(&[("severity", "critical"), ("team", "infrastructure")]), &[]),
            vec!["page", "chat"]
        );
        assert_eq!(
            r.receivers_for(&l(&[("severity", "warning"), ("team", "xinfra")]), &[]),
            vec!["all"]
        );
        assert_eq!(r.receivers_for(&l(&[]), &["chat".to_string()]), vec!["chat"]);
    }
}
