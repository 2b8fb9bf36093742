//! `Worker::schema_from_types` (feature `schema`): the JSON Schemas schemars derives from the
//! handler's types, `--schema` with and without them, and the input checked against them
//! before the handler runs, in the typed decode's words.

use runpod_worker::{handler_fn, Job, JobContext, JobStatus, TestOutcome, Worker, WorkerError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Input {
    /// The text to shout.
    text: String,
    /// How loud.
    #[serde(default)]
    level: Level,
    /// Times, 1 to 3.
    #[schemars(range(min = 1, max = 3))]
    #[serde(default = "one")]
    times_over: u8,
    #[schemars(length(max = 2))]
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
enum Level {
    #[default]
    Loud,
    Louder,
}

fn one() -> u8 {
    1
}

#[derive(Serialize, JsonSchema)]
struct Output {
    shout: String,
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

async fn shout(job: Job<Input>, _ctx: JobContext) -> Result<Output, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let i = job.input;
    let mark = match i.level {
        Level::Loud => "!",
        Level::Louder => "!!",
    };
    let tags: String = i.tags.iter().map(|t| format!(" #{t}")).collect();
    Ok(Output {
        shout: vec![format!("{}{mark}{tags}", i.text.to_uppercase()); i.times_over as usize].join(" "),
    })
}

#[tokio::test]
async fn the_types_become_the_schema_document() {
    let worker = Worker::new(handler_fn(shout)).schema_from_types();
    let schema = worker.worker_schema().unwrap().to_document();
    assert_eq!(schema["input"]["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let input = &schema["input"];
    assert_eq!(input["required"], json!(["text"]));
    assert_eq!(input["properties"]["text"]["description"], "The text to shout.");
    assert_eq!(input["properties"]["timesOver"]["minimum"], 1, "renamed by serde: {input:#}");
    assert_eq!(input["properties"]["timesOver"]["maximum"], 3);
    assert_eq!(input["properties"]["timesOver"]["default"], 1);
    assert_eq!(input["properties"]["tags"]["maxItems"], 2);
    assert_eq!(input["properties"]["level"]["$ref"], "#/$defs/Level");
    assert_eq!(input["$defs"]["Level"]["enum"], json!(["loud", "louder"]), "{input:#}");
    assert_eq!(schema["output"]["required"], json!(["shout"]));
    // The document reads back as it was written (what `runpod-local --schema FILE` does).
    let again = runpod_worker::WorkerSchema::from_document(schema.clone()).unwrap();
    assert_eq!(&again, worker.worker_schema().unwrap());
}

#[tokio::test]
async fn inputs_that_break_the_schema_fail_before_the_handler_runs() {
    let before = CALLS.load(Ordering::SeqCst);
    let run = |input: serde_json::Value| async move {
        let out: TestOutcome<serde_json::Value> = Worker::new(handler_fn(shout))
            .schema_from_types()
            .run_test_job(json!({"input": input}))
            .await
            .unwrap();
        out
    };
    let out = run(json!({"text": "hi", "timesOver": 2, "level": "louder"})).await;
    assert_eq!(out.status, JobStatus::Completed);
    assert_eq!(out.output.unwrap(), json!({"shout": "HI!! HI!!"}));
    let cases = [
        (
            json!({"text": "hi", "timesOver": 9}),
            "invalid input at `input.timesOver`: invalid value: integer `9`, expected a value from 1 to 3",
        ),
        (
            json!({"text": "hi", "level": "loudest"}),
            "invalid input at `input.level`: unknown variant `loudest`, expected one of `loud`, `louder`",
        ),
        (
            json!({"text": "hi", "tags": ["a", "b", "c"]}),
            "invalid input at `input.tags`: invalid length 3, expected at most 2 items",
        ),
        (json!({"timesOver": 1}), "invalid input at `input`: missing field `text`"),
    ];
    for (input, words) in cases {
        let out = run(input).await;
        assert_eq!(out.status, JobStatus::Failed);
        let failure = out.error.unwrap();
        assert_eq!((failure.error_type.as_str(), failure.error_message.as_str()), ("InputError", words));
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), before + 1, "the handler ran for the fitting input only");
}

#[tokio::test]
async fn schema_flag_without_a_schema_says_so() {
    async fn plain(job: Job<serde_json::Value>, _ctx: JobContext) -> Result<serde_json::Value, String> {
        Ok(job.input)
    }
    let err = Worker::new(handler_fn(plain)).run_cli(["--schema".to_owned()]).await.unwrap_err();
    assert!(matches!(err, WorkerError::NoSchema), "{err}");
    assert!(err.to_string().contains("schema_from_types"), "{err}");
    // Without a schema the worker works as before.
    let out: TestOutcome =
        Worker::new(handler_fn(plain)).run_test_job(json!({"input": {"any": 1}})).await.unwrap();
    assert_eq!(out.status, JobStatus::Completed);
}

/// Load-balancing mode checks each request body too: `400` naming the field, the handler not run.
#[tokio::test]
async fn load_balancing_requests_are_checked_too() {
    use runpod_worker::load_balancing::LbConfig;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(handler_fn(shout))
        .schema_from_types()
        .system_checks(false)
        .load_balancing_config(LbConfig::default().host("127.0.0.1").port(0))
        .shutdown_on(async move {
            let _ = stop_rx.await;
        })
        .bind_load_balancing()
        .await
        .unwrap();
    let url = format!("http://{}/run", worker.app_addr());
    let ping = format!("http://{}/ping", worker.health_addr());
    let serving = tokio::spawn(worker.serve());
    let http = reqwest::Client::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while http.get(&ping).send().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
        assert!(std::time::Instant::now() < until, "the worker never became ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = http.post(&url).json(&json!({"text": "hi", "timesOver": 7})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error"],
        "invalid input at `input.timesOver`: invalid value: integer `7`, expected a value from 1 to 3"
    );
    let r = http.post(&url).json(&json!({"text": "hi"})).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), json!({"shout": "HI!"}));
    stop_tx.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
