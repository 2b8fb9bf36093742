//! A 64 MiB multipart upload to a real S3 server holds far less than 64 MiB in memory.
//!
//! A counting global allocator measures the peak of live heap bytes during the upload (this
//! binary holds only this test, so nothing else allocates meanwhile); the peak resident set
//! size (`VmHWM`, reset through `/proc/self/clear_refs`) is reported too.

use runpod_s3::test_support::TestS3;
use runpod_s3::TransferOptions;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters only add.
#[allow(unsafe_code, reason = "a counting global allocator measures the upload's peak memory")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now =
                    LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1024 * 1024;
const FILE_SIZE: usize = 64 * MIB;

/// Deterministic content: chunk `i` of 1 MiB.
fn chunk(i: usize) -> Vec<u8> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Peak resident set size in KiB since the last reset.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Fetches `url` and compares it with the generated content, chunk by chunk.
async fn verify(url: &str) {
    let mut resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (mut buf, mut index, mut total) = (Vec::with_capacity(MIB), 0usize, 0usize);
    while let Some(bytes) = resp.chunk().await.unwrap() {
        total += bytes.len();
        buf.extend_from_slice(&bytes);
        while buf.len() >= MIB {
            let rest = buf.split_off(MIB);
            assert!(buf == chunk(index), "content differs in MiB {index}");
            buf = rest;
            index += 1;
        }
    }
    assert_eq!(total, FILE_SIZE);
    assert!(buf.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_of_64_mib_keeps_memory_bounded() {
    let Some(s3) = TestS3::start() else { return };
    let opts = TransferOptions::default()
        .with_multipart_threshold(16 * MIB as u64)
        .with_part_size(8 * MIB as u64)
        .with_concurrency(4);
    let storage = s3.new_bucket("mem").await.for_job("job-mem").unwrap().with_transfer_options(opts);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..FILE_SIZE / MIB {
            f.write_all(&chunk(i)).unwrap();
        }
        f.flush().unwrap();
    }

    // File upload: parts are read from disk while they are sent.
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let hwm_reset = reset_hwm();
    let up = storage.upload_file("big.bin", &path, None).await.unwrap();
    let file_peak = PEAK.load(Ordering::Relaxed) - base;
    let file_hwm = vm_hwm_kib();
    assert_eq!(up.size, FILE_SIZE as u64);

    // Stream upload: parts are buffered, at most concurrency + 1 of them.
    let base2 = LIVE.load(Ordering::Relaxed);
    PEAK.store(base2, Ordering::Relaxed);
    let reader = tokio::fs::File::open(&path).await.unwrap();
    let up2 = storage.upload_reader("big-stream.bin", reader, "application/octet-stream").await.unwrap();
    let stream_peak = PEAK.load(Ordering::Relaxed) - base2;
    assert_eq!(up2.size, FILE_SIZE as u64);

    eprintln!(
        "MEASURED: 64 MiB upload_file peak heap {:.1} MiB (RSS high-water {} since reset: {}); \
         upload_reader peak heap {:.1} MiB (8 MiB parts, 4 in parallel)",
        file_peak as f64 / MIB as f64,
        if hwm_reset { "measured" } else { "not reset" },
        file_hwm.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into()),
        stream_peak as f64 / MIB as f64,
    );
    assert!(file_peak < 8 * MIB, "file upload held {file_peak} bytes at peak");
    assert!(stream_peak < 48 * MIB, "stream upload held {stream_peak} bytes at peak");

    if let (true, Some(kib)) = (hwm_reset, file_hwm) {
        assert!(kib < 48 * 1024, "whole-process RSS reached {kib} KiB during the file upload");
    }

    // 8 parts of 8 MiB: S3 marks a multipart object's ETag with its part count.
    let head =
        storage.client().head_object().bucket(storage.bucket()).key("job-mem/big.bin").send().await.unwrap();
    assert!(head.e_tag().unwrap_or("").trim_matches('"').ends_with("-8"), "{:?}", head.e_tag());

    verify(&up.url).await;
    verify(&up2.url).await;
}
