//! The S3 client connects only where its [`EndpointPolicy`] allows: loopback (by address or by
//! a name resolving to it), link-local (cloud metadata) and their IPv4-mapped and decimal forms
//! are refused before anything is sent, and a redirect is never followed. Real sockets on
//! 127.0.0.1 count the connections that arrive.
//!
//! This binary never calls `TestS3::start` (which sets `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS=true`
//! in its process); each case sets its policy on the configuration.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use runpod_s3::test_support::counting_listener;
use runpod_s3::{EndpointPolicy, Storage, StorageConfig, StorageError, ENV_ALLOW_PRIVATE_S3_ENDPOINTS};
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;

async fn upload(endpoint: &str, policy: Option<EndpointPolicy>) -> Result<(), StorageError> {
    let mut config = StorageConfig::new(endpoint, "AKIDGUARD", "SECRETGUARD", "bucket");
    if let Some(p) = policy {
        config = config.with_endpoint_policy(p);
    }
    Storage::new(&config)?.for_job("job-guard")?.upload_bytes("a.txt", "x", "text/plain").await.map(|_| ())
}

fn assert_blocked(result: Result<(), StorageError>, endpoint: &str) {
    match result {
        Err(e @ StorageError::BlockedEndpoint { .. }) => {
            let text = e.to_string();
            assert!(text.contains(ENV_ALLOW_PRIVATE_S3_ENDPOINTS), "{endpoint}: {text}");
            assert!(!text.contains("SECRETGUARD") && !text.contains("AKIDGUARD"), "{text}");
        }
        other => panic!("{endpoint}: expected BlockedEndpoint, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_and_link_local_endpoints_are_refused_before_connecting() {
    let (port, connections) = counting_listener().await.unwrap();
    let endpoints = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"), // a name that resolves to loopback
        format!("http://[::1]:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://2130706433:{port}"), // 127.0.0.1 in decimal
        format!("http://127.1:{port}"),
        format!("http://[64:ff9b::7f00:1]:{port}"), // NAT64 form of 127.0.0.1
        "http://169.254.169.254".to_owned(),        // cloud metadata
        "http://[fd00:ec2::254]".to_owned(),        // AWS metadata over IPv6 (in fc00::/7, yet metadata)
        "http://[64:ff9b::a9fe:a9fe]".to_owned(),   // NAT64 form of 169.254.169.254
        "http://[2002:a9fe:a9fe::1]".to_owned(),    // 6to4 form of 169.254.169.254
        "http://100.100.100.200".to_owned(),        // Alibaba metadata (in CGNAT space, yet metadata)
        "http://192.0.2.10".to_owned(),             // TEST-NET-1
        "http://0.0.0.0:9000".to_owned(),
    ];
    for policy in [EndpointPolicy::Public, EndpointPolicy::Private] {
        for endpoint in &endpoints {
            assert_blocked(upload(endpoint, Some(policy)).await, endpoint);
        }
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a refused endpoint was connected to");

    // The listener does take connections: with the policy lifted, the client reaches it.
    let err = upload(&format!("http://127.0.0.1:{port}"), Some(EndpointPolicy::Any)).await.unwrap_err();
    assert!(matches!(err, StorageError::Request { .. }), "{err}");
    assert!(connections.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn the_default_allows_public_addresses_only() {
    if std::env::var_os(ENV_ALLOW_PRIVATE_S3_ENDPOINTS).is_some() {
        eprintln!("SKIPPED: {ENV_ALLOW_PRIVATE_S3_ENDPOINTS} is set in this environment");
        return;
    }
    assert_eq!(EndpointPolicy::from_env(), EndpointPolicy::Public);
    let (port, connections) = counting_listener().await.unwrap();
    assert_blocked(upload(&format!("http://localhost:{port}"), None).await, "localhost");
    assert_blocked(upload(&format!("http://127.0.0.1:{port}"), None).await, "127.0.0.1");
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (target_port, target_connections) = counting_listener().await.unwrap();
    let location = format!("http://127.0.0.1:{target_port}/bucket/job-guard/a.txt");
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response() }
    });
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });

    let err = upload(&endpoint, Some(EndpointPolicy::Any)).await.unwrap_err();
    assert!(matches!(err, StorageError::Request { .. }), "{err}");
    assert_eq!(target_connections.load(Ordering::SeqCst), 0, "the redirect was followed");
}
