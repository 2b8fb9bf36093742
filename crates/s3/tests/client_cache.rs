//! One SDK client per distinct endpoint, region and keys, shared across jobs and buckets.
//! (Its own test binary with one test: the cache is process-wide and counted here.)

use runpod_s3::{cached_client_count, client_for, Storage, StorageConfig};

#[test]
fn clients_are_built_once_per_distinct_config() {
    let a = StorageConfig::new("http://127.0.0.1:9", "AKID1", "SECRET1", "bucket-a");
    assert_eq!(cached_client_count(), 0);
    let first = Storage::new(&a).unwrap();
    assert_eq!(cached_client_count(), 1);
    // Same endpoint and keys, other bucket and job: the same client.
    let mut b = a.clone();
    b.bucket = "bucket-b".into();
    let _ = Storage::new(&b).unwrap().for_job("job-2").unwrap();
    let _ = first.for_job("job-1").unwrap();
    client_for(&a).unwrap();
    assert_eq!(cached_client_count(), 1);
    // Another secret, region or endpoint: another client.
    Storage::new(&StorageConfig::new("http://127.0.0.1:9", "AKID1", "SECRET2", "bucket-a")).unwrap();
    Storage::new(&a.clone().with_region("eu-west-1")).unwrap();
    Storage::new(&StorageConfig::new("http://127.0.0.1:10", "AKID1", "SECRET1", "bucket-a")).unwrap();
    assert_eq!(cached_client_count(), 4);
    // An invalid config builds nothing.
    assert!(Storage::new(&StorageConfig::new("nope", "k", "s", "b")).is_err());
    assert_eq!(cached_client_count(), 4);

    each_runtime_gets_its_own_client();
}

/// A client is not reused from another tokio runtime: its pooled connections died with it.
/// (Called from the test above: the counts of two tests running at once would mix.)
fn each_runtime_gets_its_own_client() {
    let config = StorageConfig::new("http://127.0.0.1:11", "AKID9", "SECRET9", "b");
    let before = cached_client_count();
    for _ in 0..2 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            client_for(&config).unwrap();
            client_for(&config).unwrap();
        });
    }
    assert_eq!(cached_client_count(), before + 2);
}
