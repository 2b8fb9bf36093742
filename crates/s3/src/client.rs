//! Building `aws_sdk_s3::Client`s for S3-compatible services, once per distinct configuration.

use crate::config::StorageConfig;
use crate::endpoint_policy::EndpointPolicy;
use crate::error::{redact_url, StorageError};
use aws_sdk_s3::config::{
    timeout::TimeoutConfig, BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
    ResponseChecksumValidation,
};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How many distinct configurations the process-wide cache keeps before it starts over.
const CACHE_CAPACITY: usize = 64;

/// What makes two clients different. Holds the secret, so it has no `Debug`.
///
/// The tokio runtime is part of it: a client's pooled connections are tasks of the runtime
/// that opened them and die with it, so a client must not outlive its runtime's use (tests and
/// programs that build several runtimes would otherwise get "dispatch task is gone").
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    runtime: Option<tokio::runtime::Id>,
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    policy: EndpointPolicy,
}

fn cache() -> &'static Mutex<HashMap<ClientKey, aws_sdk_s3::Client>> {
    static CACHE: OnceLock<Mutex<HashMap<ClientKey, aws_sdk_s3::Client>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The client for `config`: built on first use, then shared by every caller in the same tokio
/// runtime with the same endpoint, region, keys and endpoint policy (the bucket does not
/// matter). Reusing it reuses its connection pool, which saves a TLS handshake per job.
///
/// The client connects only to addresses the configuration's
/// [`EndpointPolicy`](crate::EndpointPolicy) allows: an IP-literal endpoint it refuses is
/// [`StorageError::BlockedEndpoint`] here, a name resolving to one when a request is sent.
pub fn client_for(config: &StorageConfig) -> Result<aws_sdk_s3::Client, StorageError> {
    client_under(config, config.effective_endpoint_policy())
}

/// [`client_for`] under `policy` (the configuration's, worked out once by the caller).
pub(crate) fn client_under(
    config: &StorageConfig,
    policy: EndpointPolicy,
) -> Result<aws_sdk_s3::Client, StorageError> {
    config.validate()?;
    let url = url::Url::parse(&config.endpoint_url)
        .map_err(|e| StorageError::InvalidConfig(format!("endpointUrl: {e}")))?;
    policy.resolver().check_url(&url).map_err(|refused| StorageError::BlockedEndpoint {
        endpoint: redact_url(&config.endpoint_url),
        reason: refused.to_string(),
        remedy: policy.remedy(),
    })?;
    let key = ClientKey {
        runtime: tokio::runtime::Handle::try_current().ok().map(|h| h.id()),
        endpoint: config.endpoint_url.clone(),
        region: config.effective_region(),
        access_key_id: config.access_key_id.expose().to_owned(),
        secret_access_key: config.secret_access_key.expose().to_owned(),
        policy,
    };
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(client) = map.get(&key) {
        return Ok(client.clone());
    }
    if map.len() >= CACHE_CAPACITY {
        map.clear();
    }
    // Building logs SDK details too; keep them out like the calls' (see sdk_logs.rs).
    let client = crate::sdk_logs::quietly(|| build_client(&key));
    map.insert(key, client.clone());
    Ok(client)
}

/// How many clients the process-wide cache holds (for tests and diagnostics).
pub fn cached_client_count() -> usize {
    cache().lock().unwrap_or_else(|p| p.into_inner()).len()
}

fn build_client(key: &ClientKey) -> aws_sdk_s3::Client {
    let credentials =
        Credentials::new(key.access_key_id.clone(), key.secret_access_key.clone(), None, None, "runpod-s3");
    let timeouts = TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).build();
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(key.endpoint.clone())
        .region(Region::new(key.region.clone()))
        .credentials_provider(credentials)
        // Virtual-host addressing needs DNS for BUCKET.host, which custom endpoints rarely have.
        .force_path_style(true)
        // Many S3-compatible servers reject the newer default checksum headers.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(timeouts);
    if let Some(http) = crate::endpoint_policy::http_client(key.policy) {
        conf = conf.http_client(http);
    }
    aws_sdk_s3::Client::from_conf(conf.build())
}
