//! runpod-s3 against a real S3 server: one test binary (each file a module). `client_cache`,
//! `endpoint_guard` and `multipart_memory` are binaries of their own: they read process-wide
//! state (the client cache, the default endpoint policy that `TestS3::start` changes, the heap).

mod download;
mod download_archives;
mod log_secrets;
mod s3_server;
