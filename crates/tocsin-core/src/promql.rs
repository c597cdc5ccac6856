//! PromQL checked offline: what `query` sources send to their datasource must parse and
//! yield an instant vector, so `check` catches a typo before the datasource does.
//!
//! Pure: the parse is promql-parser's; nothing is sent anywhere.

use crate::config::EngineConfig;
use crate::diag::Diagnostic;

/// `check`'s offline parse of every PromQL string of the config at `path`: a syntax error,
/// or an expression that is not an instant vector (the query source stores vectors only),
/// is reported at the string.
pub fn query_sources(path: &str, cfg: &EngineConfig) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for q in &cfg.sources.query {
        for (local, promql) in &q.series {
            let (line, column) = (promql.line(), promql.column());
            match promql_parser::parser::parse(promql.expose()) {
                Err(e) => diags.push(
                    Diagnostic::error(
                        path,
                        line,
                        column,
                        "promql",
                        format!("the PromQL of `{local}` does not parse: {e}"),
                    )
                    .with_hint("the string is sent to the datasource as written; test it there first"),
                ),
                Ok(expr) => {
                    let kind = expr.value_type();
                    if kind != promql_parser::parser::value::ValueType::Vector {
                        diags.push(
                            Diagnostic::error(
                                path,
                                line,
                                column,
                                "promql",
                                format!("the PromQL of `{local}` yields a {kind}, not an instant vector"),
                            )
                            .with_hint("a scalar becomes a vector with `vector(...)`; a range vector needs a function such as `rate(...)`"),
                        );
                    }
                }
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse_config};

    #[test]
    fn check_reports_promql_errors_at_the_string() {
        let src = Source::from_text(
            "tocsin.yaml",
            "datasources:\n  - { name: prom, url: http://127.0.0.1:9090 }\nsources:\n  query:\n    - datasource: prom\n      series:\n        good: 'sum by (job) (rate(x_total[5m]))'\n        bad: 'sum(rate(x[5m])'\n        scalar: '1 + 1'\n",
        )
        .unwrap();
        let cfg = parse_config(&src, &|_: &str| None).unwrap();
        let diags = query_sources("tocsin.yaml", &cfg);
        assert_eq!(diags.len(), 2, "{diags:?}");
        let bad = diags.iter().find(|d| d.message.contains("`bad`")).unwrap();
        assert_eq!((bad.line, bad.column), (8, 14));
        let scalar = diags.iter().find(|d| d.message.contains("`scalar`")).unwrap();
        assert_eq!((scalar.line, scalar.column), (9, 17));
        assert!(scalar.message.contains("scalar"), "{}", scalar.message);
    }
}
