//! Writing `tests.json` from `test_input.json` files and `hub.json`, and the top-level check
//! of test inputs against a worker's `--schema` document.

use super::report::{Findings, Report};
use super::rules::{self, GPU_POOLS};
use super::{read_json, ReadError};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The timeout `hub tests` gives a case when none is asked for, in ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// Why `tests.json` was not written.
#[derive(Debug, thiserror::Error)]
pub enum TestsFileError {
    /// An input file, `hub.json` or the schema cannot be read or parsed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A `test_input.json` is not `{"input": {...}}`.
    #[error("{}: must be a job, {{\"input\": {{...}}}}, as the worker's --test-input reads it", .0.display())]
    NotAJob(PathBuf),
    /// The cases or the file written from them break a rule (the report says which).
    #[error("the cases do not pass the check:\n{0}")]
    Invalid(Report),
    /// The file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The case a `test_input.json` file makes: its `input`, named for the file (`test_input`).
pub fn case_from_file(path: &Path) -> Result<(String, Value), TestsFileError> {
    let job = read_json(path)?;
    let input = job
        .get("input")
        .filter(|i| i.is_object())
        .cloned()
        .ok_or_else(|| TestsFileError::NotAJob(path.to_owned()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    Ok((if name.is_empty() { "test_input".to_owned() } else { name }, input))
}

/// The value an env `input` gives its variable when the user leaves it: its `default` as
/// text (a boolean through `trueValue`/`falseValue`, else `true`/`false`).
pub(crate) fn input_default(input: &Value) -> Option<String> {
    match input.get("default")? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => {
            let key = if *b { "trueValue" } else { "falseValue" };
            Some(input.get(key).and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| b.to_string()))
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `tests.json` for `cases` (name, input): each with `timeout_ms`, the test machine taken from
/// `hub` (its `cpuFlavor`, or the first GPU of `gpuIds`: a pool's first GPU ID, and `gpuCount`),
/// its `allowedCudaVersions`, and in `env` each required variable that has a default. From
/// `existing` (the file as it was) it keeps the cases of other names, each kept case's place
/// and a replaced case's timeout when `timeout_ms` is `None`, and the `env` entries.
pub fn tests_from_inputs(
    hub: &Value,
    cases: &[(String, Value)],
    timeout_ms: Option<u64>,
    existing: Option<&Value>,
) -> Value {
    let old_tests: Vec<Value> =
        existing.and_then(|e| e.get("tests")).and_then(Value::as_array).cloned().unwrap_or_default();
    let case = |name: &str, input: &Value, old: Option<&Value>| {
        let timeout = timeout_ms
            .or_else(|| old.and_then(|o| o.get("timeout")).and_then(Value::as_u64))
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        json!({"name": name, "input": input, "timeout": timeout})
    };
    let mut tests: Vec<Value> = Vec::new();
    for old in &old_tests {
        let name = old.get("name").and_then(Value::as_str);
        match cases.iter().find(|(n, _)| Some(n.as_str()) == name) {
            Some((n, input)) => tests.push(case(n, input, Some(old))),
            None => tests.push(old.clone()),
        }
    }
    for (n, input) in cases {
        if !tests.iter().any(|t| t.get("name").and_then(Value::as_str) == Some(n)) {
            tests.push(case(n, input, None));
        }
    }

    let hub_config = hub.get("config").cloned().unwrap_or_default();
    let mut config = Map::new();
    if hub_config.get("runsOn").and_then(Value::as_str) == Some("GPU") {
        let first = hub_config
            .get("gpuIds")
            .and_then(Value::as_str)
            .and_then(|ids| ids.split(',').map(str::trim).find(|id| !id.is_empty() && !id.starts_with('-')))
            .unwrap_or_default();
        let gpu = GPU_POOLS.iter().find(|(pool, _)| *pool == first).map(|(_, gpu)| *gpu).unwrap_or(first);
        config.insert("gpuTypeId".into(), json!(gpu));
        config.insert("gpuCount".into(), hub_config.get("gpuCount").cloned().unwrap_or(json!(1)));
    } else if let Some(flavor) = hub_config.get("cpuFlavor") {
        config.insert("cpuFlavor".into(), flavor.clone());
    }
    let mut env: Vec<Value> = existing
        .and_then(|e| e.pointer("/config/env"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for entry in hub_config.get("env").and_then(Value::as_array).into_iter().flatten() {
        let (Some(key), Some(input)) = (entry.get("key").and_then(Value::as_str), entry.get("input")) else {
            continue;
        };
        let required = input.get("required").and_then(Value::as_bool).unwrap_or(false);
        let set = env.iter().any(|e| e.get("key").and_then(Value::as_str) == Some(key));
        if let (true, false, Some(value)) = (required, set, input_default(input)) {
            env.push(json!({"key": key, "value": value}));
        }
    }
    if !env.is_empty() {
        config.insert("env".into(), Value::Array(env));
    }
    if let Some(cuda) = hub_config.get("allowedCudaVersions") {
        config.insert("allowedCudaVersions".into(), cuda.clone());
    }
    json!({"tests": tests, "config": config})
}

/// Checks each case's input against the `input` schema of `schema` (a worker's `--schema`
/// document, `{"input": ..., "output": ...}`; a bare JSON Schema is read as the input's): the
/// top-level `required` fields are there, and with `additionalProperties: false` no other
/// field is. Not a JSON Schema validator: a deeper mismatch fails when the case runs.
pub fn check_inputs_against_schema(tests: &Value, schema: &Value, file: &Path) -> Report {
    let mut f = Findings::new(file);
    let input_schema = schema.get("input").unwrap_or(schema);
    for (i, case) in tests.get("tests").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let Some(input) = case.get("input") else { continue };
        check_one(&mut f, &format!("$.tests[{i}].input"), input, input_schema);
    }
    f.report
}

fn check_one(f: &mut Findings<'_>, at: &str, input: &Value, schema: &Value) {
    let Some(fields) = input.as_object() else {
        if schema.get("type").and_then(Value::as_str) == Some("object") {
            f.error(at, format!("the schema asks for an object, not {input}"));
        }
        return;
    };
    for name in
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
    {
        if !fields.contains_key(name) {
            f.error(at, format!("has no `{name}`, which the schema requires"));
        }
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        let known = schema.get("properties").and_then(Value::as_object);
        for name in fields.keys() {
            if !known.is_some_and(|k| k.contains_key(name)) {
                f.error(&format!("{at}.{name}"), "is not a property of the schema, which allows no others");
            }
        }
    }
}

/// `tests.json` as text, its fields in the guide's order (`name`, `input`, `timeout`; the
/// machine, then `env`), unknown ones after them; a final newline.
pub(crate) fn pretty(tests: &Value) -> String {
    let text = serde_json::to_string_pretty(&InOrder(tests, &["tests", "config"])).unwrap_or_default();
    text + "\n"
}

/// Serializes an object with `.1`'s keys first, in that order, then the others; nested
/// objects of `tests.json` with their own orders.
struct InOrder<'a>(&'a Value, &'static [&'static str]);

impl serde::Serialize for InOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> =
                    self.1.iter().filter_map(|k| map.get_key_value(*k).map(|(k, _)| k)).collect();
                keys.extend(map.keys().filter(|k| !self.1.contains(&k.as_str())));
                let mut m = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    let order: &'static [&'static str] = match k.as_str() {
                        "tests" => &["name", "input", "timeout"],
                        "config" => &["gpuTypeId", "gpuCount", "cpuFlavor", "env", "allowedCudaVersions"],
                        "env" => &["key", "value"],
                        _ => &[],
                    };
                    let v = &map[k.as_str()];
                    if matches!(k.as_str(), "input") {
                        m.serialize_entry(k, v)?;
                    } else {
                        m.serialize_entry(k, &InOrder(v, order))?;
                    }
                }
                m.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&InOrder(item, self.1))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// What `hub tests` writes and from what.
#[derive(Debug, Clone)]
pub struct WriteTests {
    /// The worker's folder: `hub.json` is read from its `.runpod/`.
    pub dir: PathBuf,
    /// The `test_input.json` files, one case each.
    pub inputs: Vec<PathBuf>,
    /// The worker's `--schema` document, to check the inputs with.
    pub schema: Option<PathBuf>,
    /// Each case's timeout; `None`: the replaced case's, else [`DEFAULT_TIMEOUT_MS`].
    pub timeout_ms: Option<u64>,
    /// Where to write (`dir/.runpod/tests.json` by default).
    pub out: PathBuf,
}

impl WriteTests {
    /// Writes the file when the cases and the result pass the checks; returns the warnings.
    pub fn write(&self) -> Result<Report, TestsFileError> {
        let hub_file = self.dir.join(super::RUNPOD_DIR).join("hub.json");
        let hub = read_json(&hub_file)?;
        let mut report = rules::check_hub(&hub, &hub_file);
        let cases = self.inputs.iter().map(|p| case_from_file(p)).collect::<Result<Vec<_>, _>>()?;
        let existing = match read_json(&self.out) {
            Ok(v) => Some(v),
            Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let tests = tests_from_inputs(&hub, &cases, self.timeout_ms, existing.as_ref());
        report.extend(rules::check_tests(&tests, Some(&hub), &self.out));
        if let Some(schema) = &self.schema {
            report.extend(check_inputs_against_schema(&tests, &read_json(schema)?, &self.out));
        }
        if !report.passed() {
            return Err(TestsFileError::Invalid(report));
        }
        let text = pretty(&tests);
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| TestsFileError::Write { path: parent.to_owned(), source })?;
        }
        std::fs::write(&self.out, text)
            .map_err(|source| TestsFileError::Write { path: self.out.clone(), source })?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_hub() -> Value {
        json!({"title": "T", "description": "D", "type": "serverless", "category": "language",
               "config": {"runsOn": "CPU", "cpuFlavor": "cpu3c-2-4", "containerDiskInGb": 5,
                          "env": [{"key": "MODEL_ID", "input": {"name": "Model", "type": "huggingface", "description": "d",
                                                               "default": "o/m", "required": true}},
                                  {"key": "FAST", "input": {"name": "Fast", "type": "boolean", "description": "d",
                                                            "default": true, "trueValue": "yes", "falseValue": "no"}},
                                  {"key": "N", "input": {"name": "N", "type": "number", "description": "d", "default": 4}}]}})
    }

    #[test]
    fn cases_get_the_listings_machine_and_required_defaults() {
        let t = tests_from_inputs(&cpu_hub(), &[("test_input".into(), json!({"text": "a"}))], None, None);
        assert_eq!(
            t,
            json!({"tests": [{"name": "test_input", "input": {"text": "a"}, "timeout": DEFAULT_TIMEOUT_MS}],
                   "config": {"cpuFlavor": "cpu3c-2-4", "env": [{"key": "MODEL_ID", "value": "o/m"}]}})
        );
        assert!(rules::check_tests(&t, Some(&cpu_hub()), Path::new("t")).passed());

        let gpu = json!({"config": {"runsOn": "GPU", "gpuIds": "-NVIDIA L4,AMPERE_24,ADA_24", "gpuCount": 2,
                                    "allowedCudaVersions": ["12.4"]}});
        let t = tests_from_inputs(&gpu, &[("a".into(), json!({}))], Some(5000), None);
        assert_eq!(
            t["config"],
            json!({"gpuTypeId": "NVIDIA RTX A5000", "gpuCount": 2, "allowedCudaVersions": ["12.4"]})
        );
        assert_eq!(t["tests"][0]["timeout"], 5000);
        let named = json!({"config": {"runsOn": "GPU", "gpuIds": "NVIDIA L40S", "gpuCount": 1}});
        assert_eq!(tests_from_inputs(&named, &[], None, None)["config"]["gpuTypeId"], "NVIDIA L40S");
    }

    #[test]
    fn an_existing_file_keeps_its_other_cases_and_env() {
        let existing = json!({"tests": [{"name": "extra", "input": {"x": 1}, "timeout": 1500},
                                        {"name": "test_input", "input": {"old": true}, "timeout": 9000}],
                              "config": {"cpuFlavor": "cpu3c", "env": [{"key": "MODEL_ID", "value": "mine"}]}});
        let t = tests_from_inputs(
            &cpu_hub(),
            &[("test_input".into(), json!({"new": true}))],
            None,
            Some(&existing),
        );
        assert_eq!(
            t["tests"],
            json!([{"name": "extra", "input": {"x": 1}, "timeout": 1500},
                   {"name": "test_input", "input": {"new": true}, "timeout": 9000}])
        );
        assert_eq!(
            t["config"]["env"],
            json!([{"key": "MODEL_ID", "value": "mine"}]),
            "the file's own value wins"
        );
        assert_eq!(t["config"]["cpuFlavor"], "cpu3c-2-4", "the machine follows hub.json");
    }

    #[test]
    fn the_file_is_written_in_the_guides_order() {
        let t = json!({"config": {"env": [{"value": "v", "key": "K"}], "cpuFlavor": "cpu3c"},
                       "tests": [{"timeout": 5, "name": "a", "input": {"z": 1, "a": 2}, "extra": true}]});
        let text = pretty(&t);
        let order: Vec<usize> = [
            "\"tests\"",
            "\"name\"",
            "\"input\"",
            "\"timeout\"",
            "\"extra\"",
            "\"config\"",
            "\"cpuFlavor\"",
            "\"env\"",
            "\"key\"",
            "\"value\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), t);
    }

    #[test]
    fn defaults_become_text() {
        let env = cpu_hub()["config"]["env"].clone();
        assert_eq!(input_default(&env[0]["input"]).as_deref(), Some("o/m"));
        assert_eq!(input_default(&env[1]["input"]).as_deref(), Some("yes"));
        assert_eq!(input_default(&env[2]["input"]).as_deref(), Some("4"));
        assert_eq!(input_default(&json!({"default": false})).as_deref(), Some("false"));
        assert_eq!(input_default(&json!({"type": "string"})), None);
    }

    #[test]
    fn the_schema_checks_top_level_fields_only() {
        let tests = json!({"tests": [{"name": "a", "input": {"text": "x", "extra": 1}}, {"name": "b", "input": {"top": 2}}]});
        let doc = json!({"input": {"type": "object", "required": ["text"],
                                   "properties": {"text": {"type": "string"}, "top": {"type": "integer"}}},
                         "output": null});
        let errors: Vec<String> = check_inputs_against_schema(&tests, &doc, Path::new("t"))
            .errors()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(errors, ["$.tests[1].input: has no `text`, which the schema requires"]);
        let mut closed = doc.clone();
        closed["input"]["additionalProperties"] = json!(false);
        let errors: Vec<String> = check_inputs_against_schema(&tests, &closed, Path::new("t"))
            .errors()
            .map(|p| p.path.clone())
            .collect();
        assert_eq!(errors, ["$.tests[0].input.extra", "$.tests[1].input"]);
        // A bare schema is the input's; a wrong type inside a field is not looked at.
        let bare = json!({"type": "object", "required": ["top"], "properties": {"top": {"type": "string"}}});
        assert_eq!(check_inputs_against_schema(&tests, &bare, Path::new("t")).errors().count(), 1);
    }

    #[test]
    fn writes_a_checked_file_from_test_input_json() {
        let dir = std::env::temp_dir().join(format!("runpod-local-hub-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".runpod")).unwrap();
        std::fs::write(dir.join(".runpod/hub.json"), cpu_hub().to_string()).unwrap();
        std::fs::write(dir.join("test_input.json"), r#"{"input": {"text": "a b"}}"#).unwrap();
        let w = WriteTests {
            dir: dir.clone(),
            inputs: vec![dir.join("test_input.json")],
            schema: None,
            timeout_ms: Some(20_000),
            out: dir.join(".runpod/tests.json"),
        };
        let report = w.write().unwrap();
        assert!(report.problems.is_empty(), "{report}");
        let written = read_json(&dir.join(".runpod/tests.json")).unwrap();
        assert_eq!(
            written["tests"][0],
            json!({"name": "test_input", "input": {"text": "a b"}, "timeout": 20000})
        );

        // A schema the input does not meet: nothing written.
        std::fs::write(dir.join("schema.json"), r#"{"input": {"required": ["top"]}, "output": null}"#)
            .unwrap();
        std::fs::remove_file(dir.join(".runpod/tests.json")).unwrap();
        let err = WriteTests { schema: Some(dir.join("schema.json")), ..w.clone() }.write().unwrap_err();
        assert!(err.to_string().contains("has no `top`"), "{err}");
        assert!(!dir.join(".runpod/tests.json").exists());

        // Not a job, not JSON.
        std::fs::write(dir.join("bad.json"), r#"{"text": "a"}"#).unwrap();
        let err = WriteTests { inputs: vec![dir.join("bad.json")], ..w.clone() }.write().unwrap_err();
        assert!(matches!(err, TestsFileError::NotAJob(_)), "{err}");
        std::fs::write(dir.join("bad.json"), "{").unwrap();
        let err = WriteTests { inputs: vec![dir.join("bad.json")], ..w }.write().unwrap_err();
        assert!(err.to_string().contains("bad.json is not valid JSON"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
