//! Typed configuration files and their loading: rule files, receivers files, the engine
//! config (`tocsin.yaml`) and rule unit-test files, plus their JSON Schemas.
//!
//! Owns: the serde types of all four file kinds, YAML parsing with serde-saphyr under
//! resource limits, `${ENV}` substitution with secret redaction, the mapping of YAML errors
//! to located [`Diagnostic`]s, and schema generation.
//!
//! Must not touch: the file system or the process environment. Callers read files and pass
//! their bytes ([`Source::new`]), and pass the environment as a function. Semantic checks
//! (expressions, tier order, cross-references) belong to the rule compiler, which uses the
//! positions this module keeps in [`Sp`] and [`Text`].

mod engine;
mod env;
mod intervals;
mod load;
mod plain;
mod receivers;
mod rules;
mod schema;
mod test;
mod validate;
mod value;
mod walk;

pub use engine::{
    BasicAuth, DatasourceConfig, EngineConfig, LogSource, PushSource, QuerySource, RemoteWriteConfig, RemoteWriteSend,
    ScrapeSource, SourcesConfig, SystemSource, authorization,
};
pub use intervals::{TimeIntervalDef, TimeRangeDef, TimesDef};
pub use load::{
    AnyFile, FileKind, MAX_FILE_BYTES, Source, detect_kind, parse_any, parse_config, parse_receivers, parse_rules,
    parse_test,
};
pub use receivers::{
    AlertmanagerDef, ConsoleDef, EmailDef, InhibitDef, MsteamsDef, PagerdutyDef, PagerdutySeverity, RECEIVER_KINDS,
    RawReceiverDef, ReceiverDef, ReceiverFile, ReceiverKindDef, RouteDef, SlackDef, SmtpDef, TlsMode, WebhookDef,
    WebhookFormat,
};
pub use rules::{ActionDef, ActionWebhookDef, FlapDef, GroupDef, NoDataDef, RuleDef, RuleFile, TierDef};
pub use schema::schema;
pub use test::{AlertExpectation, ExpectedAlert, InputSeries, Start, TestCase, TestFile, TimedExpectations};
pub use value::{ByteSize, Dur, MatchValue, REDACTED, ScalarString, Sp, Text, scalar_position};

use crate::diag::Diagnostic;

/// The environment as the loader sees it: variable name → value, `None` when unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Shorthand for what the parse functions return.
pub type Parsed<T> = Result<T, Vec<Diagnostic>>;
