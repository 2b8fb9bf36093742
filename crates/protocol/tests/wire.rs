//! serde round trips against JSON literals of the platform docs and the Python SDK
//! (docs/client-api.md, docs/worker-api.md).

use runpod_protocol::*;
use serde_json::{json, Value};

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(literal: Value) -> T {
    let typed: T = serde_json::from_value(literal.clone()).expect("deserialize");
    assert_eq!(serde_json::to_value(&typed).expect("serialize"), literal);
    typed
}

#[test]
fn job_request_from_the_request_guide() {
    let req: JobRequest = round_trip(json!({
        "input": {"prompt": "..."},
        "webhook": "https://example.com/hook",
        "policy": {"executionTimeout": 600000, "lowPriority": false, "ttl": 86400000},
        "s3Config": {"accessId": "AKID", "accessSecret": "TOPSECRET", "bucketName": "b", "endpointUrl": "https://s3.example.com"}
    }));
    assert!(req.validate().is_ok());
    let p = req.policy.as_ref().unwrap();
    assert_eq!(p.execution_timeout_ms(), 600_000);
    assert!(!p.is_low_priority());
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("TOPSECRET") && !dbg.contains("AKID"), "{dbg}");
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn policy_bounds() {
    let p = |v: Value| serde_json::from_value::<Policy>(v).unwrap().validate();
    assert_eq!(p(json!({"executionTimeout": 5000})), Err(PolicyError::ExecutionTimeout(5000)));
    assert!(p(json!({"executionTimeout": 5001})).is_ok());
    assert_eq!(p(json!({"ttl": 9999})), Err(PolicyError::Ttl(9999)));
    assert!(p(json!({"ttl": 10000})).is_ok());
    assert!(p(json!({"ttl": 604800000})).is_ok());
    assert_eq!(p(json!({"ttl": 604800001})), Err(PolicyError::Ttl(604800001)));
    assert_eq!(Policy::default().ttl_ms(), 86_400_000);
    assert_eq!(Policy::default().execution_timeout_ms(), 600_000);
}

#[test]
fn job_request_without_input_is_rejected() {
    assert!(serde_json::from_value::<JobRequest>(json!({"webhook": "x"})).is_err());
}

#[test]
fn runsync_answer_from_the_request_guide() {
    let s: StatusResponse = round_trip(json!({
        "delayTime": 824, "executionTime": 3391, "id": "sync-abc", "output": {"x": 1}, "status": "COMPLETED"
    }));
    assert_eq!(s.status, JobStatus::Completed);
    assert_eq!(s.delay_time, Some(824));
    assert!(s.status.is_final());
}

#[test]
fn statuses_use_the_wire_spelling() {
    for (st, s) in [
        (JobStatus::InQueue, "IN_QUEUE"),
        (JobStatus::InProgress, "IN_PROGRESS"),
        (JobStatus::Completed, "COMPLETED"),
        (JobStatus::Failed, "FAILED"),
        (JobStatus::Cancelled, "CANCELLED"),
        (JobStatus::TimedOut, "TIMED_OUT"),
    ] {
        assert_eq!(serde_json::to_value(st).unwrap(), json!(s));
        assert_eq!(st.to_string(), s);
    }
}

#[test]
fn run_stream_purge_and_error_bodies() {
    let _: RunResponse = round_trip(json!({"id": "j1", "status": "IN_QUEUE"}));
    let s: StreamResponse =
        round_trip(json!({"status": "IN_PROGRESS", "stream": [{"output": "a"}, {"output": {"b": 2}}]}));
    assert_eq!(s.stream.len(), 2);
    let _: PurgeResponse = round_trip(json!({"removed": 3, "status": "completed"}));
    let _: ErrorBody = round_trip(json!({"error": "missing input"}));
}

#[test]
fn health_shape() {
    let h: Health = round_trip(json!({
        "jobs": {"completed": 1, "failed": 5, "inProgress": 0, "inQueue": 2, "retried": 0},
        "workers": {"idle": 0, "running": 1, "unhealthy": 0}
    }));
    assert_eq!(h.jobs.failed, 5);
    // Counters the platform leaves out default to zero.
    let h: Health = serde_json::from_value(json!({"jobs": {}, "workers": {"idle": 2}})).unwrap();
    assert_eq!(h.workers.idle, 2);
}

#[test]
fn worker_job_keeps_unknown_fields_and_redacts_secrets() {
    let job: Job = round_trip(json!({
        "id": "job-1", "input": {"n": 1},
        "s3Config": {"accessId": "AKID", "accessSecret": "TOPSECRET", "bucketName": "b", "endpointUrl": "http://127.0.0.1:8333"},
        "policy": {"executionTimeout": 60000},
        "somethingNew": true
    }));
    assert_eq!(job.extra.get("somethingNew"), Some(&json!(true)));
    assert_eq!(job.s3_config.as_ref().unwrap().access_secret.expose(), "TOPSECRET");
    assert!(!format!("{job:?}").contains("TOPSECRET"));
}

#[test]
fn worker_bodies() {
    let p: JobDone = round_trip(json!({"status": "IN_PROGRESS", "output": "half way"}));
    assert!(p.is_progress());
    let d: JobDone = round_trip(json!({"output": [1, 2], "stopPod": true}));
    assert!(!d.is_progress());
    assert_eq!(JobDone::error("boom"), serde_json::from_value(json!({"error": "boom"})).unwrap());
    let _: StreamPost = round_trip(json!({"output": {"token": "hi"}}));
    let s: JobsToStop = round_trip(json!({"jobsToStop": ["a", "b"]}));
    assert_eq!(s.jobs_to_stop, vec!["a", "b"]);
    let _: ErrorReport = round_trip(json!({
        "error_type": "ValueError", "error_message": "bad", "error_traceback": "tb",
        "hostname": "h", "worker_id": "w", "runpod_version": "1.12.0"
    }));
}
