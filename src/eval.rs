//! `tocsin eval`: one collection from the live sources (host, scrape targets, query
//! sources) and one evaluation of every group,
//! printed as a table.
//!
//! Owns the table; it starts the daemon's state as a dry run (no lock, a private copy of
//! the state) and evaluates through the engine, never delivering or storing anything.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::alert::state::Phase;
use crate::daemon::{init_tracing, now, runtime, start};
use crate::engine::{Output, RuleRef};

/// `tocsin eval`: one collection from the live sources and one evaluation of every group,
/// printed as a table.
pub fn eval(config: Option<&Path>) -> ExitCode {
    init_tracing();
    let (shared, _rx) = match start(config, true) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let cfg = &shared.loaded.cfg.sources;
        if let Some(sys) = &cfg.system {
            let mut system = crate::sources::host::system::from_config(sys);
            // CPU percentages need two readings some time apart.
            let mut samples = Vec::new();
            system.collect(&*shared, &mut samples, now());
            tokio::time::sleep(Duration::from_millis(500)).await;
            system.collect(&*shared, &mut samples, now());
        }
        for s in &cfg.scrape {
            let timeout = s
                .timeout
                .as_ref()
                .map(|d| d.value.0)
                .unwrap_or(crate::sources::scrape::DEFAULT_TIMEOUT);
            if let Ok(t) = crate::sources::scrape::Target::new(s.name.expose(), s.url.expose(), timeout, s.honor_labels)
            {
                let mut samples = Vec::new();
                let up = match t.scrape().await {
                    Ok(sc) => {
                        samples = sc.samples;
                        1.0
                    }
                    Err(e) => {
                        eprintln!("scrape {}: {e}", t.job);
                        0.0
                    }
                };
                samples.push(t.meta("up", up));
                shared.ingest(&format!("scrape:{}", t.job), s.max_series, &samples, now());
            }
        }
        let rules = std::sync::Arc::clone(&shared.core().policy.rules);
        for entry in crate::sources::query::entries(&shared.loaded.cfg, &shared.loaded.file, &rules) {
            let (samples, failures) = crate::sources::query::once(&entry, now()).await;
            for f in failures {
                eprintln!("{f}");
            }
            shared.ingest(&entry.source, entry.max_series as u32, &samples, now());
        }
    });
    let t = now();
    let mut core = shared.core();
    let core = &mut *core;
    let mut out = Output::default();
    println!(
        "{:<28} {:<10} {:<10} {:>12}  labels",
        "rule", "state", "severity", "value"
    );
    for g in 0..core.policy.rules.groups.len() {
        let p = &mut core.pipeline;
        p.engine.evaluate_group(g, t, &mut p.series, &mut out);
        for (r, rule) in core.policy.rules.groups[g].rules.iter().enumerate() {
            let rref = RuleRef { group: g, rule: r };
            let missing = core.engine.missing_metrics(rref, &core.series);
            if !missing.is_empty() {
                println!(
                    "{:<28} {:<10} {:<10} {:>12}  no series for {}",
                    rule.name,
                    "-",
                    "-",
                    "-",
                    missing.join(", ")
                );
                continue;
            }
            for inst in core.engine.instances(rref) {
                let (state, sev) = match (inst.machine.phase(), rule.alert()) {
                    (Phase::Firing { tier, .. }, Some(a)) => (
                        "firing",
                        a.policy.tiers[tier.min(a.policy.tiers.len() - 1)].severity.to_string(),
                    ),
                    (Phase::Pending { tier }, Some(a)) => (
                        "pending",
                        a.policy.tiers[tier.min(a.policy.tiers.len() - 1)].severity.to_string(),
                    ),
                    (_, Some(_)) => ("inactive", "-".to_string()),
                    (_, None) => ("recorded", "-".to_string()),
                };
                // Every significant digit: a rate of 1.3275e-05 must not read as 0.
                let value = inst
                    .value
                    .map(crate::series::float_text)
                    .unwrap_or_else(|| "no data".into());
                println!(
                    "{:<28} {:<10} {:<10} {:>12}  {}",
                    rule.name, state, sev, value, inst.labels
                );
            }
        }
    }
    ExitCode::SUCCESS
}
