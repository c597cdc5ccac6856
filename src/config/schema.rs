//! JSON Schemas (draft-07, which the YAML language server understands) generated from the
//! file types, so that `schemas/*.json` can never disagree with what the loader accepts.

use schemars::generate::SchemaSettings;

use super::{EngineConfig, FileKind, ReceiverFile, RuleFile, TestFile};

/// The JSON Schema of a file kind.
pub fn schema(kind: FileKind) -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = match kind {
        FileKind::Rules => generator.into_root_schema_for::<RuleFile>(),
        FileKind::Receivers => generator.into_root_schema_for::<ReceiverFile>(),
        FileKind::Config => generator.into_root_schema_for::<EngineConfig>(),
        FileKind::Test => generator.into_root_schema_for::<TestFile>(),
    };
    schema.to_value()
}
