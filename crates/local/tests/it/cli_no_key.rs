//! `runpod-local` started without `--api-key` says on start-up that it accepts any key, and
//! then does: any bearer key, or none, reaches both APIs.

use crate::common;

use common::spawn_local;
use std::time::Duration;

#[tokio::test]
async fn without_a_key_it_says_so_and_accepts_any() {
    let (_server, lines) = spawn_local(&["--port", "0", "--endpoint-id", "open"], 4).await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[3], "no --api-key given: accepting any key", "{lines:?}");
    let base = lines[0].strip_prefix("runpod-local listening on ").expect(&lines[0]).to_owned();

    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    for key in [Some("anything"), Some("something-else"), None] {
        let mut req = http.post(format!("{base}/v2/open/run")).body(r#"{"input": 1}"#);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "key {key:?}");
    }
    let r = http.get(format!("{base}/v2/open/job-take/w1")).bearer_auth("whatever").send().await.unwrap();
    assert_eq!(r.status(), 200, "the worker API too");
    let job: serde_json::Value = r.json().await.unwrap();
    assert_eq!(job["input"], 1, "{job}");
}
