//! A worker's schema document (`{"input": ..., "output": ...}`, each a JSON Schema 2020-12) and
//! the one check of a job's input against it, shared by the worker (`--test-input`, every job)
//! and the local endpoint (`/run`, `/runsync`, the console).
//!
//! The check covers the keywords `schemars` emits for serde types: `type`, `properties`,
//! `required`, `additionalProperties`, `items`, `prefixItems`, `enum`, `const`, the numeric
//! bounds and `multipleOf`, string and array lengths, `uniqueItems`, `minProperties`,
//! `maxProperties`, `$ref` into the document's `$defs`, `allOf`, `anyOf` and `oneOf` (checked as
//! `anyOf`: the typed decode takes the first variant that fits). Other keywords (`format`,
//! `pattern`, `not`, `if`, ...) are accepted unchecked, so the check never refuses what the typed
//! decode would take for a keyword it does not know. Its words are the typed decode's:
//! `invalid input at `input.repeat`: ...`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A worker's contract: the JSON Schema of its jobs' `input` and, when known, of their `output`
/// (each self-contained, its definitions under `$defs`). `<worker> --schema` prints it;
/// `runpod-local --schema FILE` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSchema {
    /// The schema of `input`.
    pub input: Value,
    /// The schema of `output` (`null`: not known).
    #[serde(default)]
    pub output: Option<Value>,
}

/// Where an input breaks the schema, and how: the typed decode's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input at `{path}`: {message}")]
pub struct SchemaViolation {
    /// The field's path, e.g. `input.messages[2].role`.
    pub path: String,
    /// What was expected and found.
    pub message: String,
}

/// Why a schema document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a worker schema document: {0}")]
pub struct SchemaDocumentError(String);

impl WorkerSchema {
    /// Reads a schema document (what `--schema` prints): an object with an `input` schema (an
    /// object or a boolean) and an optional `output` schema.
    pub fn from_document(doc: Value) -> Result<WorkerSchema, SchemaDocumentError> {
        let schema: WorkerSchema = serde_json::from_value(doc).map_err(|e| {
            SchemaDocumentError(format!("{e} (expected {{\"input\": {{...}}, \"output\": ...}})"))
        })?;
        let usable = |s: &Value| s.is_object() || s.is_boolean();
        if !usable(&schema.input) {
            return Err(SchemaDocumentError("`input` is not a JSON Schema (an object or a boolean)".into()));
        }
        if schema.output.as_ref().is_some_and(|o| !usable(o)) {
            return Err(SchemaDocumentError(
                "`output` is not a JSON Schema (an object, a boolean or null)".into(),
            ));
        }
        Ok(schema)
    }

    /// The document `--schema` prints: `{"input": ..., "output": ...}`.
    pub fn to_document(&self) -> Value {
        serde_json::json!({"input": self.input, "output": self.output})
    }

    /// The first place where `input` breaks the input schema, if any.
    pub fn check_input(&self, input: &Value) -> Result<(), SchemaViolation> {
        match self.input_violations(input, 1).into_iter().next() {
            Some(v) => Err(v),
            None => Ok(()),
        }
    }

    /// Every place where `input` breaks the input schema (at most `limit`), in document order:
    /// the console shows each next to its field.
    pub fn input_violations(&self, input: &Value, limit: usize) -> Vec<SchemaViolation> {
        let mut check =
            Check { root: &self.input, found: Vec::new(), limit: limit.max(1), depth: 0, steps: 0 };
        check.value(&self.input, input, "input");
        check.found
    }
}

/// One walk of a value against a schema, collecting violations.
struct Check<'a> {
    root: &'a Value,
    found: Vec<SchemaViolation>,
    limit: usize,
    /// `$ref` nesting, bounded so that a recursive schema cannot loop.
    depth: usize,
    /// Schema-and-value pairs visited, bounded so that no schema makes a check run long.
    steps: usize,
}

/// `$ref` chains deeper than this are not followed (the value is accepted there).
const MAX_DEPTH: usize = 64;
/// Past this many steps the rest of the value is accepted unchecked (the typed decode still
/// runs). A million values is more than any form holds, and it bounds a pathological `anyOf`
/// nest (2^64 paths) to 4 s in a debug build on a busy 2-core machine.
const MAX_STEPS: usize = 1_000_000;

impl<'a> Check<'a> {
    fn full(&self) -> bool {
        self.found.len() >= self.limit
    }

    fn fail(&mut self, path: &str, message: String) {
        if !self.full() {
            self.found.push(SchemaViolation { path: path.to_owned(), message });
        }
    }

    /// Whether `value` fits `schema`, without recording anything (for `anyOf` and friends).
    fn fits(&mut self, schema: &'a Value, value: &Value) -> bool {
        let (found, limit) = (std::mem::take(&mut self.found), self.limit);
        self.limit = 1;
        self.value(schema, value, "");
        let fits = self.found.is_empty();
        (self.found, self.limit) = (found, limit);
        fits
    }

    fn value(&mut self, schema: &'a Value, value: &Value, path: &str) {
        self.steps += 1;
        if self.full() || self.steps > MAX_STEPS {
            return;
        }
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.fail(path, "no value is allowed here".into()),
            Value::Object(s) => s,
            _ => return,
        };
        if let Some(Value::String(r)) = schema.get("$ref") {
            if self.depth < MAX_DEPTH {
                if let Some(target) = self.resolve(r) {
                    self.depth += 1;
                    self.value(target, value, path);
                    self.depth -= 1;
                }
            }
        }
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for s in all {
                self.value(s, value, path);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(any)) = schema.get(key) {
                if !any.iter().any(|s| self.fits(s, value)) {
                    // One variant of the value's type (`Option<Struct>`'s object, say): its own
                    // words name the field inside; else the variants in words.
                    let typed: Vec<&'a Value> = any
                        .iter()
                        .filter(|s| self.declared_type(s).is_none_or(|t| type_fits(t, value)))
                        .collect();
                    match typed.as_slice() {
                        [only] => self.value(only, value, path),
                        _ => self.fail(
                            path,
                            format!(
                                "invalid value: {}, expected {}",
                                found(value),
                                any_of_words(any, self.root)
                            ),
                        ),
                    }
                    return;
                }
            }
        }
        if let Some(t) = schema.get("type") {
            if !type_fits(t, value) {
                return self
                    .fail(path, format!("invalid type: {}, expected {}", found(value), type_words(t)));
            }
        }
        if let Some(c) = schema.get("const") {
            if !json_eq(c, value) {
                return self.fail(path, format!("invalid value: {}, expected {}", found(value), shown(c)));
            }
        }
        if let Some(Value::Array(choices)) = schema.get("enum") {
            if !choices.iter().any(|c| json_eq(c, value)) {
                let list = choices.iter().map(shown).collect::<Vec<_>>().join(", ");
                let message = match value {
                    Value::String(s) => format!("unknown variant `{s}`, expected one of {list}"),
                    _ => format!("invalid value: {}, expected one of {list}", found(value)),
                };
                return self.fail(path, message);
            }
        }
        match value {
            Value::Number(n) => self.number(schema, n, value, path),
            Value::String(s) => {
                let chars = s.chars().count();
                self.length(schema, chars, "minLength", "maxLength", "character", path);
            }
            Value::Array(items) => self.array(schema, items, path),
            Value::Object(fields) => self.object(schema, fields, path),
            _ => {}
        }
    }

    /// The `type` a schema declares, through one `$ref`.
    fn declared_type(&self, schema: &'a Value) -> Option<&'a Value> {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => self.resolve(r)?,
            None => schema,
        };
        schema.get("type")
    }

    /// `#/$defs/Name` (or `#/definitions/Name`, or `#`) in the document; others are not followed.
    fn resolve(&self, r: &str) -> Option<&'a Value> {
        let pointer = r.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }

    fn number(&mut self, schema: &Map<String, Value>, n: &serde_json::Number, value: &Value, path: &str) {
        let Some(x) = n.as_f64() else { return };
        let bound = |k: &str| schema.get(k).and_then(Value::as_f64);
        let (min, max) = (bound("minimum"), bound("maximum"));
        let (xmin, xmax) = (bound("exclusiveMinimum"), bound("exclusiveMaximum"));
        let out = min.is_some_and(|m| x < m)
            || max.is_some_and(|m| x > m)
            || xmin.is_some_and(|m| x <= m)
            || xmax.is_some_and(|m| x >= m);
        if out {
            let lower =
                min.map(|m| format!("at least {}", num(m))).or(xmin.map(|m| format!("more than {}", num(m))));
            let upper =
                max.map(|m| format!("at most {}", num(m))).or(xmax.map(|m| format!("less than {}", num(m))));
            let expected = match (min, max, lower, upper) {
                (Some(lo), Some(hi), _, _) => format!("a value from {} to {}", num(lo), num(hi)),
                (_, _, Some(l), Some(u)) => format!("{l} and {u}"),
                (_, _, Some(l), None) => l,
                (_, _, None, Some(u)) => u,
                (_, _, None, None) => "a value in range".into(),
            };
            return self.fail(path, format!("invalid value: {}, expected {expected}", found(value)));
        }
        if let Some(step) = bound("multipleOf").filter(|s| *s > 0.0) {
            let q = x / step;
            if (q - q.round()).abs() > 1e-9 {
                self.fail(
                    path,
                    format!("invalid value: {}, expected a multiple of {}", found(value), num(step)),
                );
            }
        }
    }

    fn length(
        &mut self,
        schema: &Map<String, Value>,
        len: usize,
        lo: &str,
        hi: &str,
        unit: &str,
        path: &str,
    ) {
        let get = |k: &str| schema.get(k).and_then(Value::as_u64).map(|n| n as usize);
        let plural = |n: usize| if n == 1 { unit.to_owned() } else { format!("{unit}s") };
        if let Some(min) = get(lo).filter(|m| len < *m) {
            self.fail(path, format!("invalid length {len}, expected at least {min} {}", plural(min)));
        } else if let Some(max) = get(hi).filter(|m| len > *m) {
            self.fail(path, format!("invalid length {len}, expected at most {max} {}", plural(max)));
        }
    }

    fn array(&mut self, schema: &'a Map<String, Value>, items: &[Value], path: &str) {
        self.length(schema, items.len(), "minItems", "maxItems", "item", path);
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, item) in items.iter().enumerate() {
                if items[..i].iter().any(|earlier| json_eq(earlier, item)) {
                    self.fail(
                        &format!("{path}[{i}]"),
                        format!("invalid value: {}, expected unique items", found(item)),
                    );
                    break;
                }
            }
        }
        let prefix = match schema.get("prefixItems") {
            Some(Value::Array(p)) => p.as_slice(),
            _ => &[],
        };
        for (i, item) in items.iter().enumerate() {
            let sub = match prefix.get(i) {
                Some(s) => Some(s),
                None => schema.get("items"),
            };
            if let Some(sub) = sub {
                self.value(sub, item, &format!("{path}[{i}]"));
            }
        }
    }

    fn object(&mut self, schema: &'a Map<String, Value>, fields: &Map<String, Value>, path: &str) {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    self.fail(path, format!("missing field `{name}`"));
                }
            }
        }
        let count = |k: &str| schema.get(k).and_then(Value::as_u64).map(|n| n as usize);
        if let Some(min) = count("minProperties").filter(|m| fields.len() < *m) {
            self.fail(path, format!("invalid length {}, expected at least {min} fields", fields.len()));
        }
        if let Some(max) = count("maxProperties").filter(|m| fields.len() > *m) {
            self.fail(path, format!("invalid length {}, expected at most {max} fields", fields.len()));
        }
        for (name, field) in fields {
            let at = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            match props.and_then(|p| p.get(name)) {
                Some(sub) => self.value(sub, field, &at),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        let known = props
                            .map(|p| p.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default();
                        let message = match known.is_empty() {
                            true => format!("unknown field `{name}`, there are no fields"),
                            false => format!("unknown field `{name}`, expected one of {known}"),
                        };
                        self.fail(&at, message);
                    }
                    Some(sub) => self.value(sub, field, &at),
                    None => {}
                },
            }
        }
    }
}

/// Whether `value` is of the JSON Schema type(s) `t`. `integer` is what serde decodes into an
/// integer type: a number written without a fraction or exponent.
fn type_fits(t: &Value, value: &Value) -> bool {
    let one = |name: &str| match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    };
    match t {
        Value::String(name) => one(name),
        Value::Array(names) => names.iter().filter_map(Value::as_str).any(one),
        _ => true,
    }
}

/// `a string`, `an integer or null`: the type(s) in words.
fn type_words(t: &Value) -> String {
    let word = |name: &str| match name {
        "integer" => "an integer".to_owned(),
        "array" => "an array".to_owned(),
        "object" => "an object".to_owned(),
        "null" => "null".to_owned(),
        other => format!("a {other}"),
    };
    match t {
        Value::String(name) => word(name),
        Value::Array(names) => {
            names.iter().filter_map(Value::as_str).map(word).collect::<Vec<_>>().join(" or ")
        }
        _ => "a value".into(),
    }
}

/// What `anyOf`/`oneOf` allow, in words: the variants' types or constants where they say them.
fn any_of_words(variants: &[Value], root: &Value) -> String {
    let mut words: Vec<String> = Vec::new();
    for v in variants {
        let v = match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(v),
            None => v,
        };
        let w = if let Some(c) = v.get("const") {
            shown(c)
        } else if let Some(Value::Array(e)) = v.get("enum") {
            e.iter().map(shown).collect::<Vec<_>>().join(", ")
        } else if let Some(t) = v.get("type") {
            type_words(t)
        } else {
            "another shape".into()
        };
        if !words.contains(&w) {
            words.push(w);
        }
    }
    format!("one of: {}", words.join("; "))
}

/// A value as serde's errors name what they found: `integer `5``, `string "x"`, `map`, ...
fn found(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("integer `{n}`"),
        Value::Number(n) => format!("floating point `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

/// A constant as written in an expected list: `` `a` `` for strings, JSON otherwise.
fn shown(c: &Value) -> String {
    match c {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// A bound without a needless `.0`.
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// JSON equality where `1` and `1.0` are the same number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What schemars 1.x emits for the echo example's input (deny_unknown_fields, a default, a
    /// range) plus a nested list and an optional struct.
    fn schema() -> WorkerSchema {
        WorkerSchema::from_document(json!({"input": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "message": {"type": "string", "minLength": 1},
                "repeat": {"type": "integer", "format": "uint32", "minimum": 1, "maximum": 100, "default": 1},
                "mode": {"type": "string", "enum": ["plain", "loud"]},
                "scale": {"type": "number", "exclusiveMinimum": 0.0},
                "messages": {"type": "array", "items": {"$ref": "#/$defs/Msg"}, "maxItems": 2},
                "extra": {"anyOf": [{"$ref": "#/$defs/Msg"}, {"type": "null"}]},
                "anything": true
            },
            "required": ["message"],
            "additionalProperties": false,
            "$defs": {"Msg": {"type": "object", "properties": {"role": {"type": "string"}}, "required": ["role"]}}
        }, "output": null}))
        .unwrap()
    }

    fn err(input: serde_json::Value) -> String {
        schema().check_input(&input).unwrap_err().to_string()
    }

    #[test]
    fn accepts_what_fits() {
        let s = schema();
        s.check_input(&json!({"message": "hi"})).unwrap();
        s.check_input(&json!({"message": "hi", "repeat": 100, "mode": "loud", "scale": 0.5,
            "messages": [{"role": "a"}], "extra": null, "anything": [1, {"x": 2}]}))
            .unwrap();
        s.check_input(&json!({"message": "hi", "extra": {"role": "r"}})).unwrap();
    }

    #[test]
    fn names_the_field_in_the_typed_decodes_words() {
        assert_eq!(err(json!({"repeat": 2})), "invalid input at `input`: missing field `message`");
        assert_eq!(
            err(json!({"message": "hi", "repeat": 0})),
            "invalid input at `input.repeat`: invalid value: integer `0`, expected a value from 1 to 100"
        );
        assert_eq!(
            err(json!({"message": "hi", "repeat": "many"})),
            "invalid input at `input.repeat`: invalid type: string \"many\", expected an integer"
        );
        assert_eq!(
            err(json!({"message": "hi", "repeat": 1.5})),
            "invalid input at `input.repeat`: invalid type: floating point `1.5`, expected an integer"
        );
        assert!(err(json!({"message": "hi", "mode": "quiet"}))
            .ends_with("`input.mode`: unknown variant `quiet`, expected one of `plain`, `loud`"));
        assert!(err(json!({"message": "hi", "scale": 0})).contains("expected more than 0"));
        assert_eq!(
            err(json!({"message": "hi", "messages": [{"role": "a"}, {"role": 7}]})),
            "invalid input at `input.messages[1].role`: invalid type: integer `7`, expected a string"
        );
        assert!(err(json!({"message": "hi", "messages": [{"role": "a"}, {"role": "b"}, {"role": "c"}]}))
            .contains("`input.messages`: invalid length 3, expected at most 2 items"));
        assert!(err(json!({"message": ""})).contains("invalid length 0, expected at least 1 character"));
        assert!(err(json!({"message": "hi", "extra": {"role": 1}})).contains("`input.extra.role`"));
        assert!(err(json!({"message": "hi", "extra": 5}))
            .contains("`input.extra`: invalid value: integer `5`, expected one of: an object; null"));
        assert!(err(json!({"message": "hi", "colour": 1})).contains(
            "`input.colour`: unknown field `colour`, expected one of `anything`, `extra`, `message`"
        ));
        assert!(err(json!([1])).contains("`input`: invalid type: sequence, expected an object"));
    }

    #[test]
    fn lists_every_violation_for_the_form() {
        let all = schema().input_violations(&json!({"repeat": 500, "mode": "x"}), 10);
        let paths: Vec<&str> = all.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["input", "input.mode", "input.repeat"]);
    }

    #[test]
    fn recursive_schemas_end() {
        let s = WorkerSchema::from_document(json!({"input": {"$ref": "#"}})).unwrap();
        s.check_input(&json!(1)).unwrap();
        let s = WorkerSchema::from_document(
            json!({"input": {"$ref": "#/$defs/T", "$defs": {"T": {"$ref": "#/$defs/T"}}}}),
        )
        .unwrap();
        s.check_input(&json!(1)).unwrap();
    }

    #[test]
    fn a_pathological_schema_ends() {
        // Each level doubles the work (2^64 paths, every one failing at its end), cut by the
        // step budget.
        let t = json!({"$ref": "#/$defs/T", "type": "string"});
        let s = WorkerSchema::from_document(json!({"input": {"$ref": "#/$defs/T",
            "$defs": {"T": {"anyOf": [t, t]}}}}))
        .unwrap();
        let started = std::time::Instant::now();
        let _ = s.check_input(&json!(1));
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn refuses_documents_that_are_not_schemas() {
        assert!(WorkerSchema::from_document(json!({"output": {}})).is_err());
        assert!(WorkerSchema::from_document(json!({"input": 3})).is_err());
        assert!(WorkerSchema::from_document(json!({"input": {}, "output": "x"})).is_err());
        let s = WorkerSchema::from_document(json!({"input": true})).unwrap();
        assert_eq!(s.to_document(), json!({"input": true, "output": null}));
    }
}
