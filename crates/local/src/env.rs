//! The `RUNPOD_*` environment a worker needs to talk to an endpoint.

/// The environment variables, in the platform's template form, that point a worker with id
/// `worker_id` at the endpoint `endpoint_id` served under `base_url` (no trailing slash).
///
/// `$ID` in `RUNPOD_WEBHOOK_GET_JOB` stands for the worker id, in the two result URLs for the
/// job id; `$RUNPOD_POD_ID` for the worker id. The job-take and result URLs already carry a
/// `?`, so workers append their query with `&`. `RUNPOD_AI_API_KEY` is set only when `api_key`
/// is. `RUNPOD_GPU_COUNT` is `0`: this endpoint assigns no GPUs.
pub fn worker_env_vars(
    base_url: &str,
    endpoint_id: &str,
    worker_id: &str,
    api_key: Option<&str>,
    ping_interval_ms: u64,
) -> Vec<(String, String)> {
    let api = format!("{}/v2/{endpoint_id}", base_url.trim_end_matches('/'));
    let mut vars = vec![
        ("RUNPOD_WEBHOOK_GET_JOB", format!("{api}/job-take/$ID?gpu=local")),
        ("RUNPOD_WEBHOOK_POST_OUTPUT", format!("{api}/job-done/$RUNPOD_POD_ID/$ID?gpu=local")),
        ("RUNPOD_WEBHOOK_POST_STREAM", format!("{api}/job-stream/$RUNPOD_POD_ID/$ID?gpu=local")),
        ("RUNPOD_WEBHOOK_PING", format!("{api}/ping/$RUNPOD_POD_ID")),
        ("RUNPOD_PING_INTERVAL", ping_interval_ms.to_string()),
        ("RUNPOD_POD_ID", worker_id.to_string()),
        ("RUNPOD_ENDPOINT_ID", endpoint_id.to_string()),
        ("RUNPOD_POD_HOSTNAME", worker_id.to_string()),
        ("RUNPOD_GPU_COUNT", "0".to_string()),
    ];
    if let Some(key) = api_key {
        vars.push(("RUNPOD_AI_API_KEY", key.to_string()));
    }
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
