//! The command line: one function per subcommand, each a thin shell around the core.
//!
//! Owns argument parsing (clap), reading the files the user names, printing results and
//! choosing exit codes (0 clean, 1 findings or failures, 2 unusable invocation).
//! Everything it prints is computed by `check`, `ruletest`, `config` and `diag`; it holds
//! no rule semantics of its own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use regex::Regex;

use crate::check;
use crate::config::{self, FileKind};
use crate::diag::{self, Diagnostic, Severity};
use crate::reload::{self, Depth};
use crate::ruletest::{self, FileResult};

/// tocsin: a rule-driven alert engine.
#[derive(Parser, Debug)]
#[command(name = "tocsin", version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TOCSIN_GIT_COMMIT"), ")"), about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: watch sources, evaluate rules, notify.
    Run {
        /// Engine config (default: tocsin.yaml when it exists, else built-in defaults).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Evaluate and log notifications and actions without sending or running them.
        #[arg(long)]
        dry_run: bool,
    },
    /// One evaluation against the live sources, printed as a table.
    Eval {
        /// Engine config (default: tocsin.yaml when it exists, else built-in defaults).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate config, rule, receiver and test files without side effects.
    Check {
        /// Files or directories (every *.yaml / *.yml in them). Default: tocsin.yaml,
        /// rules/, receivers/ and tests/rules/, where they exist.
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run rule unit tests.
    Test {
        /// Test files or directories. Default: tests/rules/.
        paths: Vec<PathBuf>,
        /// Only run tests whose name matches this regex.
        #[arg(long = "run", value_name = "REGEX")]
        run: Option<String>,
        /// Also write a JUnit XML report to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Translate another engine's files into tocsin files.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Replay rules (and receivers) over recorded history and report what they would have
    /// sent; with --base, the difference from the files at a git revision.
    Backtest(crate::backtest::Args),
    /// Print the JSON Schema of a file kind.
    Schema {
        /// Which file kind.
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// Silences on a running daemon: add, list, expire.
    Silence {
        #[command(flatten)]
        api: crate::client::Api,
        #[command(subcommand)]
        command: crate::client::SilenceCommand,
    },
    /// The pending and firing alerts of a running daemon.
    Alerts {
        #[command(flatten)]
        api: crate::client::Api,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: crate::client::Output,
    },
    /// Acknowledge a firing alert on a running daemon (no repeats until it changes).
    Ack {
        #[command(flatten)]
        api: crate::client::Api,
        #[command(flatten)]
        ack: crate::client::AckArgs,
    },
    /// Print a shell completion script.
    Completions {
        /// Which shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
    Github,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SchemaKind {
    Rules,
    Receivers,
    Config,
    Test,
}

/// Parses arguments and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, dry_run } => crate::daemon::run(config.as_deref(), dry_run),
        Command::Eval { config } => crate::eval::eval(config.as_deref()),
        Command::Check { paths, format } => cmd_check(paths, format),
        Command::Test { paths, run, junit } => cmd_test(paths, run, junit),
        Command::Import {
            from:
                ImportFrom::Prometheus {
                    rules,
                    alertmanager,
                    tests,
                    datasource,
                    strict,
                    out,
                },
        } => cmd_import(
            &rules,
            alertmanager.as_deref(),
            &tests,
            datasource.as_deref(),
            strict,
            &out,
        ),
        Command::Schema { kind } => {
            let kind = match kind {
                SchemaKind::Rules => FileKind::Rules,
                SchemaKind::Receivers => FileKind::Receivers,
                SchemaKind::Config => FileKind::Config,
                SchemaKind::Test => FileKind::Test,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&config::schema(kind)).expect("schemas serialize")
            );
            ExitCode::SUCCESS
        }
        Command::Backtest(args) => crate::backtest::run(args),
        Command::Silence { api, command } => crate::client::silence(&api, command),
        Command::Alerts { api, output } => crate::client::alerts(&api, output),
        Command::Ack { api, ack } => crate::client::ack(&api, ack),
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tocsin", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            match page.render(&mut std::io::stdout()) {
                // `tocsin man | head` closing the pipe early is not a failure.
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tocsin man: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// What `tocsin import` translates from.
#[derive(Subcommand, Debug)]
enum ImportFrom {
    /// Prometheus rule files and promtool unit tests (docs/migrating.md).
    Prometheus {
        /// Prometheus rule files.
        #[arg(required = true, value_name = "RULES")]
        rules: Vec<PathBuf>,
        /// An Alertmanager config to translate into a receivers file.
        #[arg(long, value_name = "FILE")]
        alertmanager: Option<PathBuf>,
        /// promtool unit-test files to translate into tocsin rule tests.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        tests: Vec<PathBuf>,
        /// Run what tocsin cannot evaluate in this Prometheus-compatible datasource
        /// (`NAME` or `NAME=URL`; default URL http://127.0.0.1:9090).
        #[arg(long, value_name = "NAME[=URL]")]
        datasource: Option<String>,
        /// Exit 1 when anything was not imported or a file had problems.
        #[arg(long)]
        strict: bool,
        /// Directory to write the tocsin files and IMPORT.md into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `tocsin import prometheus`: reads the files, runs the pure import, writes its output.
fn cmd_import(
    rules: &[PathBuf],
    alertmanager: Option<&std::path::Path>,
    tests: &[PathBuf],
    datasource: Option<&str>,
    strict: bool,
    out: &std::path::Path,
) -> ExitCode {
    let datasource = match datasource.map(crate::import::Datasource::parse).transpose() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tocsin import: --datasource: {e}");
            return ExitCode::from(2);
        }
    };
    let read = |paths: &[PathBuf]| -> Result<Vec<(String, Vec<u8>)>, String> {
        paths
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .map(|b| (p.display().to_string(), b))
                    .map_err(|e| format!("{}: {e}", p.display()))
            })
            .collect()
    };
    let am: Vec<PathBuf> = alertmanager.into_iter().map(PathBuf::from).collect();
    let input = match (read(rules), read(tests), read(&am)) {
        (Ok(rules), Ok(tests), Ok(am)) => crate::import::Input {
            rules,
            tests,
            alertmanager: am.into_iter().next(),
            datasource,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("tocsin import: {e}");
            return ExitCode::from(2);
        }
    };
    let output = crate::import::prometheus(&input);
    for (rel, text) in &output.files {
        let path = out.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        if let Err(e) = written {
            eprintln!("tocsin import: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    print!("{}", output.summary());
    if strict && (output.not_imported() > 0 || !output.problems.is_empty()) {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Expands the named paths: directories into their *.yaml / *.yml files (sorted).
fn expand(paths: &[PathBuf], depth: Depth) -> Result<Vec<PathBuf>, String> {
    reload::expand(paths, depth).map_err(|d| format!("{}: {}", d.file, d.message))
}

/// What `check` checks: every named path expanded recursively. A path that does not exist,
/// a named directory without a policy file, or no path at all is an unusable invocation
/// (exit 2): in CI a typo must fail, not pass with nothing checked.
fn check_files(paths: &[PathBuf], defaulted: bool) -> Result<Vec<PathBuf>, String> {
    if paths.is_empty() {
        return Err("nothing to check: none of tocsin.yaml, rules/, receivers/, tests/rules/ is here; name the files or directories to check".to_string());
    }
    let mut files = Vec::new();
    for p in paths {
        let found = reload::expand_one(p, Depth::Recursive).map_err(|d| format!("{}: {}", d.file, d.message))?;
        if found.is_empty() && !defaulted {
            return Err(format!(
                "{}: nothing to check: the directory has no *.yaml or *.yml file (hidden directories are skipped)",
                p.display()
            ));
        }
        files.extend(found);
    }
    if files.is_empty() {
        return Err("nothing to check: the default directories hold no *.yaml or *.yml file".to_string());
    }
    Ok(files)
}

fn defaults(candidates: &[&str]) -> Vec<PathBuf> {
    candidates.iter().map(PathBuf::from).filter(|p| p.exists()).collect()
}

fn print_diagnostics(diags: &[Diagnostic], format: Format) {
    let source_of = |file: &str| std::fs::read_to_string(file).ok();
    let text = match format {
        Format::Text => diag::render_text(diags, &source_of),
        Format::Json => diag::render_json(diags),
        Format::Github => diag::render_github(diags),
    };
    if !text.is_empty() {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
}

/// Loads the rule and receiver files that test files name from disk (`${ENV}` in receiver
/// files from the process environment, as `run` does): the loader of `tocsin test` and
/// `tocsin check`.
pub struct DiskFiles;

impl ruletest::Load for DiskFiles {
    fn rules(&self, path: &str) -> Result<config::RuleFile, Vec<Diagnostic>> {
        reload::load_rule_file(path)
    }

    fn receivers(&self, path: &str) -> Result<config::ReceiverFile, Vec<Diagnostic>> {
        let src = reload::read_source(std::path::Path::new(path)).map_err(|d| vec![d])?;
        config::parse_receivers(&src, &|name| std::env::var(name).ok())
    }
}

fn cmd_check(paths: Vec<PathBuf>, format: Format) -> ExitCode {
    let defaulted = paths.is_empty();
    let paths = if defaulted {
        defaults(&["tocsin.yaml", "rules", "receivers", "tests/rules"])
    } else {
        paths
    };
    let files = match check_files(&paths, defaulted) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tocsin check: {e}");
            return ExitCode::from(2);
        }
    };
    let mut diags = Vec::new();
    let mut sources = Vec::new();
    for f in &files {
        match reload::read_source(f) {
            Ok(s) => sources.push(s),
            Err(d) => diags.push(d),
        }
    }
    let env = |name: &str| std::env::var(name).ok();
    diags.extend(check::check(&sources, &env, &DiskFiles));
    diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    print_diagnostics(&diags, format);
    let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diags.len() - errors;
    if matches!(format, Format::Text) {
        eprintln!(
            "checked {} file(s): {errors} error(s), {warnings} warning(s)",
            files.len()
        );
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_test(paths: Vec<PathBuf>, run: Option<String>, junit: Option<PathBuf>) -> ExitCode {
    let filter = match run.as_deref().map(Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tocsin test: --run: {e}");
            return ExitCode::from(2);
        }
    };
    let paths = if paths.is_empty() {
        defaults(&["tests/rules"])
    } else {
        paths
    };
    let files = match expand(&paths, Depth::Flat) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tocsin test: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    let mut suites = Vec::new();
    for f in &files {
        let started = Instant::now();
        let name = f.to_string_lossy().into_owned();
        let result = match reload::read_source(f)
            .map_err(|d| vec![d])
            .and_then(|s| config::parse_test(&s))
        {
            Ok(test) => ruletest::run_file(&name, &test, &DiskFiles, filter.as_ref()),
            Err(diagnostics) => FileResult {
                cases: Vec::new(),
                diagnostics,
            },
        };
        print_diagnostics(&result.diagnostics, Format::Text);
        if result.diagnostics.iter().any(|d| d.severity == Severity::Error) {
            broken += 1;
        }
        for c in &result.cases {
            if c.failures.is_empty() {
                passed += 1;
                println!("PASS {name}: {}", c.name);
            } else {
                failed += 1;
                println!("FAIL {name}: {}", c.name);
                for msg in &c.failures {
                    for line in msg.lines() {
                        println!("    {line}");
                    }
                }
            }
        }
        suites.push((name, result, started.elapsed().as_secs_f64()));
    }
    if let Some(path) = junit
        && let Err(e) = std::fs::write(&path, junit_xml(&suites))
    {
        eprintln!("tocsin test: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    println!("{passed} passed, {failed} failed");
    if broken > 0 {
        eprintln!("{broken} test file(s) could not run");
    }
    if failed > 0 || broken > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit_xml(suites: &[(String, FileResult, f64)]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (name, r, secs) in suites {
        let failures = r.cases.iter().filter(|c| !c.failures.is_empty()).count();
        let errors = usize::from(r.diagnostics.iter().any(|d| d.severity == Severity::Error));
        x += &format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{secs:.3}\">\n",
            xml_escape(name),
            r.cases.len()
        );
        for d in r.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
            x += &format!(
                "    <testcase name=\"(load)\" classname=\"{}\"><error message=\"{}\"/></testcase>\n",
                xml_escape(name),
                xml_escape(&format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
            );
        }
        for c in &r.cases {
            x += &format!(
                "    <testcase name=\"{}\" classname=\"{}\">",
                xml_escape(&c.name),
                xml_escape(name)
            );
            if !c.failures.is_empty() {
                let text = c.failures.join("\n");
                x += &format!(
                    "<failure message=\"{}\">{}</failure>",
                    xml_escape(text.lines().next().unwrap_or("")),
                    xml_escape(&text)
                );
            }
            x += "</testcase>\n";
        }
        x += "  </testsuite>\n";
    }
    x + "</testsuites>\n"
}
