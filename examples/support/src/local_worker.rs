//! (feature `test-support`) A model example's handler served end to end for its tests:
//! runpod-worker's test bed ([`LocalWorker`]: a real local endpoint on 127.0.0.1 and the worker
//! runtime taking jobs from it over HTTP) and a runpod-client [`Endpoint`] for it.

use runpod_client::Endpoint;
pub use runpod_worker::testing::{LocalWorker, API_KEY};

/// A client for the endpoint of `local` (key [`API_KEY`]). Panics if the endpoint's URL is not
/// one: it is for tests.
pub fn client(local: &LocalWorker) -> Endpoint {
    let ep = local.endpoint();
    Endpoint::new(ep.endpoint_id(), Some(API_KEY)).unwrap().with_base_url(ep.base_url()).unwrap()
}
