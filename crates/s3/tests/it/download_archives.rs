//! Downloads over real HTTP (axum on 127.0.0.1): the file name comes from `Content-Disposition`
//! when the server sends one, and downloaded `.zip` archives are extracted, safely: no entry
//! outside the folder, no more entries than the cap.

use axum::http::header;
use axum::routing::get;
use axum::Router;
use runpod_s3::{DownloadError, DownloadOptions, Downloader};
use std::io::Write;

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Entries of `/many.zip`: one more than the default cap.
const MANY: usize = runpod_s3::DEFAULT_MAX_ARCHIVE_ENTRIES as usize + 1;

/// `/export?id=7` (a zip named by Content-Disposition only), `/report` (a UTF-8 name in
/// `filename*`), `/data.zip` (named by its URL), `/evil` (a zip with a `../` entry),
/// `/many.zip` ([`MANY`] empty files).
async fn serve() -> String {
    let names: Vec<String> = (0..MANY).map(|i| format!("f/{i}.txt")).collect();
    let many = zip_of(&names.iter().map(|n| (n.as_str(), &b""[..])).collect::<Vec<_>>());
    let photos = zip_of(&[("cat.txt", b"meow"), ("dogs/rex.txt", b"woof")]);
    let urlnamed = zip_of(&[("inside.txt", b"from the url name")]);
    let evil = zip_of(&[("../../outside.txt", b"escaped")]);
    let app = Router::new()
        .route(
            "/export",
            get(move || async move {
                ([(header::CONTENT_DISPOSITION, "attachment; filename=\"photos.zip\"")], photos.clone())
            }),
        )
        .route(
            "/report",
            get(|| async {
                (
                    [(
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"fallback.txt\"; filename*=UTF-8''q3%20report.txt",
                    )],
                    "numbers",
                )
            }),
        )
        .route("/data.zip", get(move || async move { urlnamed.clone() }))
        .route("/many.zip", get(move || async move { many.clone() }))
        .route(
            "/evil",
            get(move || async move {
                ([(header::CONTENT_DISPOSITION, "attachment; filename=evil.zip")], evil.clone())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn downloader() -> Downloader {
    Downloader::new(DownloadOptions::default().with_allow_private(true)).unwrap()
}

#[tokio::test]
async fn names_from_content_disposition_and_zips_extracted() {
    let base = serve().await;
    let urls = [format!("{base}/export?id=7"), format!("{base}/report"), format!("{base}/data.zip")];
    let d = downloader().download(&urls).await.unwrap();
    let names: Vec<String> =
        d.files().iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["0-photos.zip", "1-q3_report.txt", "2-data.zip"]);
    assert_eq!(std::fs::read_to_string(&d.files()[1]).unwrap(), "numbers");

    let extracted = d.extract_zips().await.unwrap();
    assert_eq!(extracted.len(), 3);
    let photos = extracted[0].as_ref().expect("the archive was extracted");
    assert_eq!(photos, &d.dir().join("0-photos"));
    assert_eq!(std::fs::read_to_string(photos.join("dogs/rex.txt")).unwrap(), "woof");
    assert_eq!(std::fs::read_to_string(photos.join("cat.txt")).unwrap(), "meow");
    assert_eq!(extracted[1], None, "not an archive");
    let by_url = extracted[2].as_ref().unwrap();
    assert_eq!(std::fs::read_to_string(by_url.join("inside.txt")).unwrap(), "from the url name");
}

#[tokio::test]
async fn an_archive_that_escapes_its_folder_is_refused() {
    let base = serve().await;
    let d = downloader().download(&[format!("{base}/evil")]).await.unwrap();
    let err = d.extract_zips().await.unwrap_err();
    assert!(matches!(err, DownloadError::Archive { .. }), "{err}");
    assert!(err.to_string().contains("outside the folder"), "{err}");
    assert!(!d.dir().join("outside.txt").exists() && !d.dir().parent().unwrap().join("outside.txt").exists());
}

#[tokio::test]
async fn an_archive_with_more_entries_than_the_cap_is_refused_before_writing() {
    let base = serve().await;
    let url = [format!("{base}/many.zip")];
    // The default cap: 10,000 entries; the archive is a few hundred kB, far under the byte cap.
    let d = downloader().download(&url).await.unwrap();
    assert!(std::fs::metadata(&d.files()[0]).unwrap().len() < 2_000_000);
    let err = d.extract_zips().await.unwrap_err();
    assert!(matches!(err, DownloadError::Archive { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{MANY} entries, more than the cap of 10000 (RUNPOD_MAX_ARCHIVE_ENTRIES)")),
        "{text}"
    );
    assert!(!d.dir().join("0-many").exists(), "nothing is written for a refused archive");

    // A configured cap: lower refuses, exactly at the count extracts every entry.
    let small =
        Downloader::new(DownloadOptions::default().with_allow_private(true).with_max_archive_entries(100));
    let err = small.unwrap().download(&url).await.unwrap().extract_zips().await.unwrap_err();
    assert!(err.to_string().contains("more than the cap of 100 "), "{err}");
    let exact = Downloader::new(
        DownloadOptions::default().with_allow_private(true).with_max_archive_entries(MANY as u64),
    );
    let d = exact.unwrap().download(&url).await.unwrap();
    let folder = d.extract_zips().await.unwrap()[0].clone().expect("extracted");
    assert_eq!(std::fs::read_dir(folder.join("f")).unwrap().count(), MANY);
}
