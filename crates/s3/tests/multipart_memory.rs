//! Multipart uploads to a real S3 server hold what `TransferOptions` documents, and no more:
//! a 64 MiB file upload far less than 64 MiB, a 256 MiB stream upload `(concurrency + 1) *
//! part_size`, plus a one-time cost for the process's first S3 client.
//!
//! A counting global allocator measures the peak of live heap bytes during each upload (this
//! binary holds only this one test, so nothing else allocates meanwhile); the resident set size
//! (`VmRSS`, and `VmHWM` reset through `/proc/self/clear_refs`) is measured too.

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

/// Resident set size now, in KiB.
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
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

/// One test, so the measurements run in order in a fresh process: the first S3 client's cost
/// can only be seen once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stay_within_their_documented_memory() {
    let Some(s3) = TestS3::start() else { return };
    let opts = TransferOptions::default()
        .with_multipart_threshold(16 * MIB as u64)
        .with_part_size(8 * MIB as u64)
        .with_concurrency(4);
    stream_of_256_mib(&s3, opts).await;
    file_and_reader_of_64_mib(&s3, opts).await;
}

/// Size of the large stream upload.
const STREAM_SIZE: usize = 256 * MIB;

/// A 256 MiB stream in 256 KiB chunks (the size `upload_reader` reads), each filled with its
/// index: cheap to make, and a misplaced chunk would change the object's size or ETag count.
fn pattern_stream() -> impl futures::Stream<Item = Result<runpod_s3::Bytes, std::io::Error>> + Send {
    const CHUNK: usize = 256 * 1024;
    futures::stream::iter((0..STREAM_SIZE / CHUNK).map(|i| Ok(runpod_s3::Bytes::from(vec![i as u8; CHUNK]))))
}

/// The first client's one-time cost, then a 256 MiB `upload_stream`: its live heap stays within
/// `(concurrency + 1) * part_size` (+ 1 MiB of request state), and so does the growth of the
/// resident set (+ 6 MiB: request state, the source's chunks, allocator slack).
async fn stream_of_256_mib(s3: &TestS3, opts: TransferOptions) {
    let bound = (opts.concurrency + 1) * opts.part_size as usize;
    let rss_idle = vm_rss_kib();
    let storage = runpod_s3::Storage::new(&s3.config(&format!("mem256-{}", std::process::id())))
        .unwrap()
        .for_job("job-mem")
        .unwrap()
        .with_transfer_options(opts);
    storage.ensure_bucket().await.unwrap();
    storage.upload_bytes("small.txt", &b"warm"[..], "text/plain").await.unwrap();
    let rss_before = vm_rss_kib();

    let hwm_reset = reset_hwm();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let up = storage.upload_stream("big.bin", pattern_stream(), "application/octet-stream").await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let heap_peak = PEAK.load(Ordering::Relaxed) - base;
    let hwm = vm_hwm_kib();
    assert_eq!(up.size, STREAM_SIZE as u64);

    let first_client = rss_idle.zip(rss_before).map(|(idle, before)| before.saturating_sub(idle));
    let growth = match (hwm_reset, rss_before, hwm) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before)),
        _ => None,
    };
    let show = |k: Option<u64>| k.map(|k| format!("{:.1} MiB", mib(k))).unwrap_or_else(|| "n/a".into());
    eprintln!(
        "MEASURED: first S3 client (build, create bucket, one PUT): RSS +{}; then a 256 MiB \
         upload_stream (8 MiB parts, 4 in parallel, documented bound {:.1} MiB): peak heap {:.1} MiB, \
         RSS high-water +{} over the RSS before it, {secs:.1} s",
        show(first_client),
        bound as f64 / MIB as f64,
        heap_peak as f64 / MIB as f64,
        show(growth),
    );
    assert!(heap_peak <= bound + MIB, "stream upload held {heap_peak} bytes at peak, documented {bound}");
    if let Some(kib) = growth {
        let limit = (bound + 6 * MIB) as u64 / 1024;
        assert!(kib <= limit, "RSS grew {kib} KiB during the stream upload, documented {bound} bytes");
    }
    if let Some(kib) = first_client {
        assert!(kib <= 16 * 1024, "the first S3 client cost {kib} KiB of RSS; the docs say about 10 MiB");
    }
    // 32 parts of 8 MiB: S3 marks a multipart object's ETag with its part count.
    let head =
        storage.client().head_object().bucket(storage.bucket()).key("job-mem/big.bin").send().await.unwrap();
    assert!(head.e_tag().unwrap_or("").trim_matches('"').ends_with("-32"), "{:?}", head.e_tag());
}

/// A 64 MiB file upload reads each part from disk as it is sent; the same file through
/// `upload_reader` buffers at most `concurrency + 1` parts. Both are fetched back and compared.
async fn file_and_reader_of_64_mib(s3: &TestS3, opts: TransferOptions) {
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
    let rss_before = vm_rss_kib();
    let hwm_reset = reset_hwm();
    let up = storage.upload_file("big.bin", &path, None).await.unwrap();
    let file_peak = PEAK.load(Ordering::Relaxed) - base;
    let file_growth = match (hwm_reset, rss_before, vm_hwm_kib()) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before)),
        _ => None,
    };
    assert_eq!(up.size, FILE_SIZE as u64);

    // Stream upload: parts are buffered, at most concurrency + 1 of them.
    let base2 = LIVE.load(Ordering::Relaxed);
    PEAK.store(base2, Ordering::Relaxed);
    let reader = tokio::fs::File::open(&path).await.unwrap();
    let up2 = storage.upload_reader("big-stream.bin", reader, "application/octet-stream").await.unwrap();
    let stream_peak = PEAK.load(Ordering::Relaxed) - base2;
    assert_eq!(up2.size, FILE_SIZE as u64);

    eprintln!(
        "MEASURED: 64 MiB upload_file peak heap {:.1} MiB (RSS high-water +{} over the RSS before it); \
         upload_reader peak heap {:.1} MiB (8 MiB parts, 4 in parallel)",
        file_peak as f64 / MIB as f64,
        file_growth.map(|k| format!("{:.1} MiB", mib(k))).unwrap_or_else(|| "n/a".into()),
        stream_peak as f64 / MIB as f64,
    );
    assert!(file_peak < 8 * MIB, "file upload held {file_peak} bytes at peak");
    let bound = (opts.concurrency + 1) * opts.part_size as usize;
    assert!(stream_peak <= bound + MIB, "stream upload held {stream_peak} bytes at peak");

    if let Some(kib) = file_growth {
        assert!(kib < 16 * 1024, "RSS grew {kib} KiB during the file upload");
    }

    // 8 parts of 8 MiB: S3 marks a multipart object's ETag with its part count.
    let head =
        storage.client().head_object().bucket(storage.bucket()).key("job-mem/big.bin").send().await.unwrap();
    assert!(head.e_tag().unwrap_or("").trim_matches('"').ends_with("-8"), "{:?}", head.e_tag());

    verify(&up.url).await;
    verify(&up2.url).await;
}
