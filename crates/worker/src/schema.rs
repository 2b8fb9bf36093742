//! The worker's schema from its handler's types (feature `schema`): `schemars` derives the
//! JSON Schema (2020-12) of `Input` as serde decodes it and of `Output` as serde encodes it.

use runpod_protocol::WorkerSchema;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;

/// The schema document of a handler whose input is `I` and output `O`.
pub(crate) fn of<I: JsonSchema, O: JsonSchema>() -> WorkerSchema {
    let input = SchemaSettings::draft2020_12().for_deserialize().into_generator().into_root_schema_for::<I>();
    let output = SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<O>();
    WorkerSchema { input: input.to_value(), output: Some(output.to_value()) }
}
