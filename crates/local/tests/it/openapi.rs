//! `/openapi.json` with a worker's schema (`runpod-local --schema FILE`): the official
//! `openapi-spec-validator` accepts the document, and a client that `openapi-python-client`
//! generates from it calls the endpoint with the worker's own types (`EchoInput`,
//! `EchoOutput`) while this test works the jobs as a worker over the worker API.
//!
//! The virtualenv comes from `scripts/test.d/25-openapi.sh` (`RUNPOD_TEST_OPENAPI_PYTHON`).
//! Without it the test prints `SKIPPED` (and fails when `CI` is set).

use crate::common::{spawn_local, Api};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const KEY: &str = "openapi-key";

/// The document `echo --schema` prints (examples/echo), as a worker hands it to runpod-local.
fn echo_schema() -> Value {
    json!({
        "input": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "EchoInput", "description": "The job's `input`.", "type": "object",
            "additionalProperties": false,
            "properties": {
                "message": {"description": "What to echo.", "type": "string"},
                "repeat": {"description": "How many times to repeat the message.", "type": "integer",
                           "format": "uint32", "default": 1, "minimum": 1, "maximum": 100},
                "stream": {"description": "Stream each repetition as a partial output.", "type": "boolean", "default": false},
                "delay_ms": {"description": "Pause between repetitions, in ms (to watch progress).", "type": "integer",
                             "format": "uint64", "default": 0, "minimum": 0, "maximum": 60000}
            },
            "required": ["message"]
        },
        "output": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "EchoOutput", "description": "The job's `output`.", "type": "object",
            "properties": {
                "echo": {"description": "The message, repeated, separated by spaces.", "type": "string"},
                "repeat": {"description": "How many times it was repeated.", "type": "integer", "format": "uint32", "minimum": 0}
            },
            "required": ["echo", "repeat"]
        }
    })
}

/// The venv's python, or `None` (after saying why) when the test must be skipped.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("RUNPOD_TEST_OPENAPI_PYTHON").map(PathBuf::from);
    if let Some(p) = path.filter(|p| p.exists()) {
        return Some(p);
    }
    let why =
        "no RUNPOD_TEST_OPENAPI_PYTHON (run ./scripts/test.sh: scripts/test.d/25-openapi.sh installs it)";
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// Runs `python` with `args` (its venv's bin/ first on PATH: the generator calls `ruff` from
/// there); panics with its output unless it succeeds; returns stdout.
fn run_python(python: &Path, args: &[&str], dir: &Path) -> String {
    let bin = python.parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(python).args(args).current_dir(dir).env("PATH", path).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{args:?}: {}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Takes jobs from the endpoint and completes each as the echo worker would, until aborted.
async fn echo_worker(api: Api) {
    loop {
        let (code, job) = api.wget("job-take/openapi-worker").await;
        if code != 200 {
            continue;
        }
        let input = &job["input"];
        let repeat = input["repeat"].as_u64().unwrap_or(1);
        let message = input["message"].as_str().unwrap_or_default();
        let echo = vec![message; repeat as usize].join(" ");
        let id = job["id"].as_str().unwrap();
        let done = api
            .wpost(
                &format!("job-done/openapi-worker/{id}"),
                &json!({"output": {"echo": echo, "repeat": repeat}}),
            )
            .await;
        assert_eq!(done.0, 200, "{done:?}");
    }
}

#[tokio::test]
async fn the_document_validates_and_a_generated_client_calls_the_endpoint() {
    let Some(python) = python() else { return };
    let dir = std::env::temp_dir().join(format!("runpod-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schema_file = dir.join("schema.json");
    std::fs::write(&schema_file, echo_schema().to_string()).unwrap();
    let (_local, lines) =
        spawn_local(&["--port", "0", "--api-key", KEY, "--schema", schema_file.to_str().unwrap()], 2).await;
    let base = lines[0].strip_prefix("runpod-local listening on ").unwrap().to_owned();
    let api = Api { http: reqwest::Client::new(), url: format!("{base}/v2/local"), key: Some(KEY.into()) };

    // Served without the key: a contract, not data.
    let doc: Value = reqwest::get(format!("{base}/openapi.json")).await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Input"]["properties"]["repeat"]["maximum"], 100);
    assert_eq!(schemas["JobRequest"]["properties"]["input"]["$ref"], "#/components/schemas/Input");
    assert_eq!(schemas["JobStatus"]["properties"]["output"]["$ref"], "#/components/schemas/Output");
    for path in ["/run", "/runsync", "/status/{id}", "/stream/{id}", "/cancel/{id}", "/health"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let doc_file = dir.join("openapi.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();

    // The official validator (OpenAPI 3.1 and the JSON Schema dialect inside it).
    let checked = run_python(
        &python,
        &["-c", "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')", doc_file.to_str().unwrap()],
        &dir,
    );
    assert_eq!(checked.trim(), "valid");

    // A client generated from it, called with the worker's own types.
    run_python(
        &python,
        &[
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--output-path",
            "echo_client",
        ],
        &dir,
    );
    let worker = tokio::spawn(echo_worker(Api {
        http: reqwest::Client::new(),
        url: api.url.clone(),
        key: api.key.clone(),
    }));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/openapi_client.py");
    let (dir2, script2, python2, base2) =
        (dir.clone(), script.clone(), python.clone(), format!("{base}/v2/local"));
    let seen = tokio::task::spawn_blocking(move || {
        run_python(&python2, &[script2.to_str().unwrap(), dir2.to_str().unwrap(), &base2, KEY], &dir2)
    })
    .await
    .unwrap();
    worker.abort();
    let seen: Value = serde_json::from_str(seen.trim()).unwrap_or_else(|e| panic!("{e}: {seen}"));
    assert_eq!(seen["run"]["status"], "IN_QUEUE", "{seen:#}");
    assert_eq!(seen["status"], json!({"status": "COMPLETED", "echo": "typed typed", "repeat": 2}));
    assert_eq!(seen["runsync"], json!({"status": "COMPLETED", "echo": "sync", "repeat": 1}));
    assert_eq!(seen["refused"]["code"], 400);
    assert_eq!(
        seen["refused"]["error"],
        "invalid input at `input.repeat`: invalid value: integer `500`, expected a value from 1 to 100"
    );
    assert_eq!(seen["health"]["completed"], 2);
    // The refused input made no job.
    let (_, health) = api.get("health").await;
    assert_eq!(health["jobs"]["completed"], 2, "{health}");
    assert_eq!(health["jobs"]["inQueue"], 0, "{health}");
    std::fs::remove_dir_all(&dir).unwrap();
}
