//! JSON Schemas (draft-07, which the YAML language server understands) generated from the
//! file types, so that `schemas/*.json` can never disagree with what the loader accepts.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;

use super::{EngineConfig, FileKind, ReceiverFile, RuleFile, TestFile};

/// The JSON Schema of a file kind.
pub fn schema(kind: FileKind) -> serde_json::Value {
    let generator = SchemaSettings::draft07()
        .with_transform(RecursiveTransform(drop_null_default))
        .into_generator();
    let schema = match kind {
        FileKind::Rules => generator.into_root_schema_for::<RuleFile>(),
        FileKind::Receivers => generator.into_root_schema_for::<ReceiverFile>(),
        FileKind::Config => generator.into_root_schema_for::<EngineConfig>(),
        FileKind::Test => generator.into_root_schema_for::<TestFile>(),
    };
    schema.to_value()
}

/// schemars writes `default: null` for every optional key that is `#[serde(default)]`.
/// An absent key says the same, and yaml-language-server (2.0) stops offering a key whose
/// schema holds such a default further down: a rule's `tiers` went missing from completion
/// because of `TierDef.when`'s. Defaults that carry a value are kept.
fn drop_null_default(schema: &mut Schema) {
    if schema.get("default").is_some_and(serde_json::Value::is_null) {
        schema.remove("default");
    }
}
