//! Where the bucket is and how to sign for it: from a job's `s3Config` or the `BUCKET_*` env.

use crate::endpoint_policy::EndpointPolicy;
use crate::error::{redact_url, StorageError};
use runpod_protocol::{S3Config, Secret};

/// Region used when the endpoint URL names none (any S3-compatible server accepts it).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Endpoint-wide bucket URL, used when a job has no `s3Config`.
pub const ENV_ENDPOINT_URL: &str = "BUCKET_ENDPOINT_URL";
/// Endpoint-wide access key id.
pub const ENV_ACCESS_KEY_ID: &str = "BUCKET_ACCESS_KEY_ID";
/// Endpoint-wide secret key.
pub const ENV_SECRET_ACCESS_KEY: &str = "BUCKET_SECRET_ACCESS_KEY";
/// Bucket name for the `BUCKET_*` configuration (a runpod-rs addition; without it the bucket is
/// taken from a virtual-host style endpoint URL such as `https://NAME.s3.REGION.amazonaws.com`).
pub const ENV_BUCKET_NAME: &str = "BUCKET_NAME";

/// Everything needed to talk to one bucket.
///
/// `Debug` redacts both keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct StorageConfig {
    /// Endpoint URL of the S3-compatible service (path-style addressing is always used).
    pub endpoint_url: String,
    /// Access key id.
    pub access_key_id: Secret,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Bucket name.
    pub bucket: String,
    /// Signing region; `None` takes it from the endpoint URL (see [`region_from_endpoint`]).
    pub region: Option<String>,
    /// Which addresses the endpoint may resolve to; `None` takes
    /// `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS` ([`EndpointPolicy::from_env`], public addresses only
    /// when unset) when the client is built.
    pub endpoint_policy: Option<EndpointPolicy>,
}

impl StorageConfig {
    /// A configuration from explicit values.
    pub fn new(
        endpoint_url: impl Into<String>,
        access_key_id: impl Into<Secret>,
        secret_access_key: impl Into<Secret>,
        bucket: impl Into<String>,
    ) -> Self {
        StorageConfig {
            endpoint_url: endpoint_url.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            bucket: bucket.into(),
            region: None,
            endpoint_policy: None,
        }
    }

    /// The configuration a job's `s3Config` carries.
    ///
    /// A virtual-host style endpoint that already names the bucket
    /// (`https://BUCKET.s3.REGION.amazonaws.com`) is turned into the service endpoint.
    pub fn from_s3_config(c: &S3Config) -> Self {
        let endpoint = strip_bucket_host(&c.endpoint_url, &c.bucket_name)
            .unwrap_or_else(|| c.endpoint_url.trim_end_matches('/').to_owned());
        StorageConfig {
            endpoint_url: endpoint,
            access_key_id: c.access_id.clone(),
            secret_access_key: c.access_secret.clone(),
            bucket: c.bucket_name.clone(),
            region: None,
            endpoint_policy: None,
        }
    }

    /// The endpoint-wide configuration from `BUCKET_ENDPOINT_URL`, `BUCKET_ACCESS_KEY_ID`,
    /// `BUCKET_SECRET_ACCESS_KEY` (and `BUCKET_NAME`), or `Ok(None)` when the three are not all
    /// set and non-empty.
    pub fn from_env() -> Result<Option<Self>, StorageError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`StorageConfig::from_env`] over any variable lookup (for tests and embedding).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, StorageError> {
        let get = |k: &str| var(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let (Some(url), Some(id), Some(secret)) =
            (get(ENV_ENDPOINT_URL), get(ENV_ACCESS_KEY_ID), get(ENV_SECRET_ACCESS_KEY))
        else {
            return Ok(None);
        };
        let (endpoint, bucket) = match get(ENV_BUCKET_NAME) {
            Some(bucket) => {
                let endpoint =
                    strip_bucket_host(&url, &bucket).unwrap_or_else(|| url.trim_end_matches('/').to_owned());
                (endpoint, bucket)
            }
            None => match split_bucket_host(&url) {
                Some(pair) => pair,
                None => {
                    return Err(StorageError::InvalidConfig(format!(
                        "{ENV_ENDPOINT_URL} {} names no bucket; set {ENV_BUCKET_NAME}",
                        redact_url(&url)
                    )))
                }
            },
        };
        Ok(Some(StorageConfig {
            endpoint_url: endpoint,
            access_key_id: Secret::new(id),
            secret_access_key: Secret::new(secret),
            bucket,
            region: None,
            endpoint_policy: None,
        }))
    }

    /// Sets the signing region instead of taking it from the URL.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets which addresses the endpoint may resolve to, instead of
    /// `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS`.
    pub fn with_endpoint_policy(mut self, policy: EndpointPolicy) -> Self {
        self.endpoint_policy = Some(policy);
        self
    }

    /// The policy in force: the configuration's own, else [`EndpointPolicy::from_env`].
    pub fn effective_endpoint_policy(&self) -> EndpointPolicy {
        self.endpoint_policy.unwrap_or_else(EndpointPolicy::from_env)
    }

    /// The signing region: the explicit one, else the one the URL names, else [`DEFAULT_REGION`].
    pub fn effective_region(&self) -> String {
        self.region
            .clone()
            .or_else(|| region_from_endpoint(&self.endpoint_url))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned())
    }

    /// Checks that the endpoint is an http(s) URL with a host and that bucket and keys are set.
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |m: String| Err(StorageError::InvalidConfig(m));
        match url::Url::parse(&self.endpoint_url) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some() => {}
            _ => return bad(format!("endpointUrl {} is not an http(s) URL", redact_url(&self.endpoint_url))),
        }
        if self.bucket.trim().is_empty() {
            return bad("bucketName is empty".into());
        }
        if self.access_key_id.is_empty() || self.secret_access_key.is_empty() {
            return bad("accessId and accessSecret must not be empty".into());
        }
        Ok(())
    }

    /// The endpoint URL for messages (no user info or query).
    pub fn endpoint_for_display(&self) -> String {
        redact_url(&self.endpoint_url)
    }
}

/// The signing region an endpoint URL names, for the shapes of AWS
/// (`s3.REGION.amazonaws.com`, `BUCKET.s3.REGION.amazonaws.com`, `s3-REGION.amazonaws.com`,
/// `s3.dualstack.REGION.amazonaws.com`; plain `s3.amazonaws.com` is `us-east-1`), Backblaze B2
/// (`s3.REGION.backblazeb2.com`), DigitalOcean Spaces (`REGION.digitaloceanspaces.com`,
/// `BUCKET.REGION.digitaloceanspaces.com`) and Cloudflare R2 (`auto`). `None` for anything else.
pub fn region_from_endpoint(endpoint_url: &str) -> Option<String> {
    let url = url::Url::parse(endpoint_url).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if host.ends_with(".r2.cloudflarestorage.com") {
        return Some("auto".into());
    }
    if let Some(rest) = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    {
        let parts: Vec<&str> = rest.split('.').collect();
        // Find the `s3` label (or `s3-REGION`) and read the region after it.
        for (i, p) in parts.iter().enumerate() {
            if *p == "s3" || p.starts_with("s3-") && p.len() > 3 {
                if let Some(region) = p.strip_prefix("s3-") {
                    if region != "external-1" && region != "accelerate" {
                        return Some(region.to_owned());
                    }
                    return Some(DEFAULT_REGION.to_owned());
                }
                let after: Vec<&str> = parts[i + 1..].iter().copied().filter(|l| *l != "dualstack").collect();
                return Some(
                    after.first().map(|r| (*r).to_owned()).unwrap_or_else(|| DEFAULT_REGION.to_owned()),
                );
            }
        }
        return None;
    }
    if host.ends_with(".backblazeb2.com") {
        let i = labels.iter().position(|l| *l == "s3")?;
        return labels.get(i + 1).filter(|r| **r != "backblazeb2").map(|r| (*r).to_owned());
    }
    if host.ends_with(".digitaloceanspaces.com") && labels.len() >= 3 {
        // REGION.digitaloceanspaces.com or BUCKET.REGION.digitaloceanspaces.com
        return Some(labels[labels.len() - 3].to_owned());
    }
    None
}

/// For a virtual-host style URL of a known provider, the service endpoint and the bucket:
/// `https://b.s3.r.amazonaws.com` → (`https://s3.r.amazonaws.com`, `b`).
fn split_bucket_host(endpoint_url: &str) -> Option<(String, String)> {
    let url = url::Url::parse(endpoint_url).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let (bucket, rest) = host.split_once('.')?;
    let is_bucket_host = ((rest.starts_with("s3.") || rest.starts_with("s3-"))
        && (rest.ends_with(".amazonaws.com")
            || rest.ends_with(".amazonaws.com.cn")
            || rest.ends_with(".backblazeb2.com")))
        || (rest.ends_with(".digitaloceanspaces.com") && rest.split('.').count() == 3);
    if !is_bucket_host || bucket.is_empty() {
        return None;
    }
    let mut service = url.clone();
    service.set_host(Some(rest)).ok()?;
    service.set_path("");
    Some((service.to_string().trim_end_matches('/').to_owned(), bucket.to_owned()))
}

/// The service endpoint when `endpoint_url` is the virtual-host URL of exactly `bucket`.
fn strip_bucket_host(endpoint_url: &str, bucket: &str) -> Option<String> {
    split_bucket_host(endpoint_url).filter(|(_, b)| b.eq_ignore_ascii_case(bucket)).map(|(e, _)| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn regions_from_provider_urls() {
        let cases = [
            ("https://s3.us-west-2.amazonaws.com", Some("us-west-2")),
            ("https://mybucket.s3.eu-central-1.amazonaws.com", Some("eu-central-1")),
            ("https://s3-ap-southeast-2.amazonaws.com", Some("ap-southeast-2")),
            ("https://s3.dualstack.us-east-2.amazonaws.com", Some("us-east-2")),
            ("https://s3.amazonaws.com", Some("us-east-1")),
            ("https://s3.cn-north-1.amazonaws.com.cn", Some("cn-north-1")),
            ("https://s3.us-west-004.backblazeb2.com", Some("us-west-004")),
            ("https://nyc3.digitaloceanspaces.com", Some("nyc3")),
            ("https://mybucket.fra1.digitaloceanspaces.com/", Some("fra1")),
            ("https://abc123.r2.cloudflarestorage.com", Some("auto")),
            ("http://127.0.0.1:8333", None),
            ("https://minio.example.com", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            assert_eq!(region_from_endpoint(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn effective_region_defaults_and_overrides() {
        let c = StorageConfig::new("http://127.0.0.1:9000", "k", "s", "b");
        assert_eq!(c.effective_region(), DEFAULT_REGION);
        assert_eq!(c.clone().with_region("eu-west-3").effective_region(), "eu-west-3");
    }

    #[test]
    fn from_s3_config_strips_virtual_host_bucket() {
        let s3 = S3Config {
            access_id: "id".into(),
            access_secret: "secret".into(),
            bucket_name: "media".into(),
            endpoint_url: "https://media.s3.us-west-2.amazonaws.com".into(),
        };
        let c = StorageConfig::from_s3_config(&s3);
        assert_eq!(c.endpoint_url, "https://s3.us-west-2.amazonaws.com");
        assert_eq!(c.bucket, "media");
        assert_eq!(c.effective_region(), "us-west-2");
        // A bucket that is not the host's first label leaves the URL alone.
        let s3 = S3Config { endpoint_url: "http://127.0.0.1:8333/".into(), ..s3 };
        assert_eq!(StorageConfig::from_s3_config(&s3).endpoint_url, "http://127.0.0.1:8333");
    }

    #[test]
    fn from_vars_reads_bucket_env() {
        let mut env = HashMap::new();
        assert!(StorageConfig::from_vars(|k| env.get(k).cloned()).unwrap().is_none());
        env.insert(ENV_ENDPOINT_URL, "https://out.nyc3.digitaloceanspaces.com".to_owned());
        env.insert(ENV_ACCESS_KEY_ID, "AKID".to_owned());
        env.insert(ENV_SECRET_ACCESS_KEY, "SECRET".to_owned());
        let c = StorageConfig::from_vars(|k| env.get(k).cloned()).unwrap().unwrap();
        assert_eq!(
            (c.endpoint_url.as_str(), c.bucket.as_str()),
            ("https://nyc3.digitaloceanspaces.com", "out")
        );
        assert_eq!(c.effective_region(), "nyc3");

        env.insert(ENV_ENDPOINT_URL, "http://127.0.0.1:8333".to_owned());
        let err = StorageConfig::from_vars(|k| env.get(k).cloned()).unwrap_err().to_string();
        assert!(err.contains(ENV_BUCKET_NAME), "{err}");
        env.insert(ENV_BUCKET_NAME, "results".to_owned());
        let c = StorageConfig::from_vars(|k| env.get(k).cloned()).unwrap().unwrap();
        assert_eq!((c.endpoint_url.as_str(), c.bucket.as_str()), ("http://127.0.0.1:8333", "results"));
    }

    #[test]
    fn validate_rejects_bad_config_without_leaking_keys() {
        let c = StorageConfig::new("ftp://host", "AKIDVALUE", "SECRETVALUE", "b");
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("not an http(s) URL"), "{err}");
        assert!(StorageConfig::new("http://h", "k", "s", " ").validate().is_err());
        assert!(StorageConfig::new("http://h", "", "s", "b").validate().is_err());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("AKIDVALUE") && !dbg.contains("SECRETVALUE"), "{dbg}");
    }
}
