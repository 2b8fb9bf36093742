//! `GET /openapi.json`: the endpoint's client API as an OpenAPI 3.1 document, with the worker's
//! input and output schemas (when the endpoint knows them) in the request and response bodies.
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12, so the worker's schemas go in as they are,
//! except for their definitions: a `$ref` in the document resolves against the document's root,
//! so each schema's `$defs` move to `components/schemas` and its `#/$defs/...` references are
//! rewritten to point there (a name taken by another definition gets a suffix).

use crate::config::Config;
use axum::extract::State;
use axum::Json;
use runpod_protocol::limits::{MAX_RUNSYNC_WAIT_MS, MIN_RUNSYNC_WAIT_MS};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// `GET /openapi.json`: served without the API key (it holds no job data).
pub(crate) async fn document(State(cfg): State<Arc<Config>>) -> Json<Value> {
    Json(build(&cfg))
}

/// The document for this endpoint.
pub(crate) fn build(cfg: &Config) -> Value {
    let mut components = Map::new();
    let (input, output) = match &cfg.schema {
        Some(s) => (
            hoist(&s.input, "Input", &mut components),
            s.output.as_ref().map(|o| hoist(o, "Output", &mut components)).unwrap_or(json!({})),
        ),
        None => {
            (json!({"description": "Any JSON value: this endpoint was given no worker schema."}), json!({}))
        }
    };
    components.insert("Input".into(), input);
    components.insert("Output".into(), output);
    for (name, schema) in fixed_schemas() {
        components.insert(name.into(), schema);
    }
    let job_id = json!({"name": "id", "in": "path", "required": true, "description": "The job's id.",
                        "schema": {"type": "string"}});
    let status_ok = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobStatus"}}}});
    let errors = errors();
    let with_errors = |mut ok: Map<String, Value>| {
        for (code, e) in errors.as_object().into_iter().flatten() {
            ok.insert(code.clone(), e.clone());
        }
        Value::Object(ok)
    };
    let request_body = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("Runpod Serverless endpoint `{}` (runpod-local)", cfg.endpoint_id),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The client API of a Runpod Serverless queue endpoint, as runpod-local serves it. \
                            The job's `input` and `output` are the worker's own types."
        },
        "servers": [{"url": format!("/v2/{}", cfg.endpoint_id)}],
        "security": [{"bearer": []}],
        "paths": {
            "/run": {"post": {
                "operationId": "run",
                "summary": "Queue a job; answers at once with its id.",
                "requestBody": request_body,
                "responses": with_errors(obj(json!({"200": {"description": "Queued.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunResponse"}}}}})))
            }},
            "/runsync": {"post": {
                "operationId": "runsync",
                "summary": "Queue a job and wait for it to end (else answer its status as it stands).",
                "parameters": [{"name": "wait", "in": "query", "required": false,
                    "description": "How long to wait, in ms.",
                    "schema": {"type": "integer", "minimum": MIN_RUNSYNC_WAIT_MS, "maximum": MAX_RUNSYNC_WAIT_MS}}],
                "requestBody": request_body,
                "responses": with_errors(obj(json!({"200": status_ok("The job, ended or as it stands.")})))
            }},
            "/status/{id}": {"get": {
                "operationId": "status",
                "summary": "Where a job stands, with its output once it is done.",
                "parameters": [job_id],
                "responses": with_errors(obj(json!({"200": status_ok("The job.")})))
            }},
            "/stream/{id}": {"get": {
                "operationId": "stream",
                "summary": "The chunks a job streamed since the previous call.",
                "parameters": [job_id],
                "responses": with_errors(obj(json!({"200": {"description": "New chunks.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StreamResponse"}}}}})))
            }},
            "/cancel/{id}": {"post": {
                "operationId": "cancel",
                "summary": "Cancel a queued or running job.",
                "parameters": [job_id],
                "responses": with_errors(obj(json!({"200": status_ok("The job, cancelled.")})))
            }},
            "/health": {"get": {
                "operationId": "health",
                "summary": "Job and worker counters.",
                "responses": with_errors(obj(json!({"200": {"description": "The counters.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}})))
            }}
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "The endpoint's API key (any, when runpod-local was started without --api-key)."}}
        }
    })
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The error answers every route may give.
fn errors() -> Value {
    let e = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "400": e("A bad request: not JSON, no `input`, or an input that breaks the worker's schema (the error names the field)."),
        "401": e("No API key, or the wrong one."),
        "404": e("No such job or endpoint."),
        "429": e("Rate limited, or the queue is full.")
    })
}

/// The protocol's own bodies.
fn fixed_schemas() -> Vec<(&'static str, Value)> {
    let ms = |what: &str| json!({"type": "integer", "minimum": 0, "description": what});
    vec![
        (
            "JobRequest",
            json!({
                "type": "object",
                "required": ["input"],
                "properties": {
                    "input": {"$ref": "#/components/schemas/Input"},
                    "webhook": {"type": "string", "description": "A URL the result is POSTed to when the job ends."},
                    "policy": {"type": "object", "properties": {
                        "executionTimeout": {"type": "integer", "exclusiveMinimum": 5000, "description": "In ms."},
                        "lowPriority": {"type": "boolean"},
                        "ttl": {"type": "integer", "minimum": 10000, "maximum": 604800000, "description": "In ms."}
                    }},
                    "s3Config": {"type": "object", "required": ["accessId", "accessSecret", "bucketName", "endpointUrl"],
                        "properties": {"accessId": {"type": "string"}, "accessSecret": {"type": "string"},
                                       "bucketName": {"type": "string"}, "endpointUrl": {"type": "string"}}}
                }
            }),
        ),
        (
            "Status",
            json!({"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]}),
        ),
        (
            "RunResponse",
            json!({
                "type": "object", "required": ["id", "status"],
                "properties": {"id": {"type": "string"}, "status": {"$ref": "#/components/schemas/Status"}}
            }),
        ),
        (
            "JobStatus",
            json!({
                "type": "object", "required": ["id", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "delayTime": ms("Time in the queue, in ms."),
                    "executionTime": ms("Time running, in ms."),
                    "workerId": {"type": "string"},
                    "output": {"$ref": "#/components/schemas/Output"},
                    "error": {"type": "string"}
                }
            }),
        ),
        (
            "StreamResponse",
            json!({
                "type": "object", "required": ["status", "stream"],
                "properties": {
                    "status": {"$ref": "#/components/schemas/Status"},
                    "stream": {"type": "array", "items": {"type": "object", "required": ["output"], "properties": {"output": {}}}},
                    "error": {"type": "string"}
                }
            }),
        ),
        (
            "Health",
            json!({
                "type": "object", "required": ["jobs", "workers"],
                "properties": {
                    "jobs": {"type": "object", "properties": {
                        "completed": {"type": "integer"}, "failed": {"type": "integer"}, "inProgress": {"type": "integer"},
                        "inQueue": {"type": "integer"}, "retried": {"type": "integer"}}},
                    "workers": {"type": "object", "properties": {
                        "idle": {"type": "integer"}, "running": {"type": "integer"}, "unhealthy": {"type": "integer"}}}
                }
            }),
        ),
        (
            "Error",
            json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}),
        ),
    ]
}

/// `schema` without its `$defs` (moved into `components`) and without `$schema`, its references
/// rewritten; `name` is the component it will be (names its definitions may not take).
fn hoist(schema: &Value, name: &str, components: &mut Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    let mut renamed: Vec<(String, String)> = Vec::new();
    if let Value::Object(m) = &mut schema {
        m.remove("$schema");
        let defs = m.remove("$defs").or_else(|| m.remove("definitions"));
        let reserved = [
            "Input",
            "Output",
            "JobRequest",
            "Status",
            "RunResponse",
            "JobStatus",
            "StreamResponse",
            "Health",
            "Error",
        ];
        for (def, body) in defs.as_ref().and_then(Value::as_object).into_iter().flatten() {
            let mut target = def.clone();
            let mut n = 2;
            while reserved.contains(&target.as_str())
                || target == name
                || components.get(&target).is_some_and(|b| b != body)
            {
                target = format!("{def}{n}");
                n += 1;
            }
            renamed.push((def.clone(), target));
        }
        if let Some(Value::Object(defs)) = defs {
            for (def, mut body) in defs {
                rewrite_refs(&mut body, &renamed, name);
                let target = renamed.iter().find(|(d, _)| *d == def).map(|(_, t)| t.clone()).unwrap_or(def);
                components.insert(target, body);
            }
        }
    }
    rewrite_refs(&mut schema, &renamed, name);
    schema
}

/// Points `#/$defs/X` (and `#/definitions/X`) at `#/components/schemas/<new name of X>`, and `#`
/// at the component `root` itself.
fn rewrite_refs(v: &mut Value, renamed: &[(String, String)], root: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                let def = r.strip_prefix("#/$defs/").or_else(|| r.strip_prefix("#/definitions/"));
                if let Some(def) = def {
                    let target =
                        renamed.iter().find(|(d, _)| d == def).map(|(_, t)| t.as_str()).unwrap_or(def);
                    *r = format!("#/components/schemas/{target}");
                } else if r == "#" {
                    *r = format!("#/components/schemas/{root}");
                }
            }
            for (_, child) in m.iter_mut() {
                rewrite_refs(child, renamed, root);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rewrite_refs(c, renamed, root)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runpod_protocol::WorkerSchema;

    #[test]
    fn moves_definitions_into_components() {
        let schema = Some(Arc::new(WorkerSchema {
            input: json!({"$schema": "x", "type": "object", "properties": {"m": {"$ref": "#/$defs/Msg"}, "me": {"$ref": "#"}},
                          "$defs": {"Msg": {"type": "string"}, "Error": {"type": "integer"}}}),
            output: Some(
                json!({"properties": {"m": {"$ref": "#/$defs/Msg"}}, "$defs": {"Msg": {"type": "number"}}}),
            ),
        }));
        let cfg = Config { schema, ..Config::default() };
        let doc = build(&cfg);
        let c = &doc["components"]["schemas"];
        assert_eq!(c["Input"]["properties"]["m"]["$ref"], "#/components/schemas/Msg");
        assert_eq!(c["Input"]["properties"]["me"]["$ref"], "#/components/schemas/Input");
        assert!(c["Input"].get("$schema").is_none() && c["Input"].get("$defs").is_none());
        assert_eq!(c["Msg"], json!({"type": "string"}));
        // Another `Msg` and a name the document uses get names of their own.
        assert_eq!(c["Output"]["properties"]["m"]["$ref"], "#/components/schemas/Msg2");
        assert_eq!(c["Msg2"], json!({"type": "number"}));
        assert_eq!(c["Error2"], json!({"type": "integer"}));
        assert_eq!(c["Error"]["required"], json!(["error"]));
    }
}
