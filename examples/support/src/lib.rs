//! What the model examples (`embeddings`, `text-generation`, `bulk-embeddings`) share, so each
//! says it once:
//!
//! - [`device`]: the device a worker runs its model on, from `DEVICE` (`cpu`, `cuda`, `cuda:N`)
//!   and this crate's `cuda` feature, with clear errors for a GPU the build or machine lacks;
//! - [`load`]: reading a model folder (`config.json`, `tokenizer.json`, safetensors weights),
//!   every failure an error naming the file;
//! - [`cli`]: the workers' `--help`;
//! - [`kernels`]: CPU kernels of the examples' own forward passes (matrix products, norms,
//!   activations, softmax), vectorised for the CPU they run on;
//! - [`test_models`]: where the examples' tests find real model weights;
//! - `local_worker` (feature `test-support`): runpod-worker's test bed (a handler served
//!   through a real local endpoint) and a runpod-client for it, for the examples' end-to-end
//!   tests;
//! - [`container`]: the repository's Dockerfiles built and run with podman, for the image tests.
//!
//! ```
//! use example_support::{load, DeviceChoice, DeviceError};
//!
//! // `DEVICE=cpu` runs on the CPU in any build; a value that is not a device is an error.
//! assert_eq!(DeviceChoice::parse(Some("cpu"))?, DeviceChoice::Cpu);
//! let err = DeviceChoice::parse(Some("tpu")).unwrap_err();
//! assert_eq!(err.to_string(), r#"DEVICE="tpu" is not a device: use cpu, cuda or cuda:N"#);
//!
//! // A model folder without a config: the error names the file.
//! let dir = std::env::temp_dir().join("example-support-doc-no-model");
//! let err = load::read_json::<serde_json::Value>(&dir.join("config.json")).unwrap_err();
//! assert!(err.to_string().starts_with("cannot read") && err.to_string().contains("config.json"));
//! # Ok::<(), DeviceError>(())
//! ```

pub mod candle_error;
pub mod cli;
pub mod container;
pub mod device;
pub mod kernels;
pub mod load;
#[cfg(feature = "test-support")]
pub mod local_worker;
pub mod test_models;

pub use cli::help_requested;
pub use device::{pick_device, DeviceChoice, DeviceError, DEVICE_ENV};
pub use load::LoadError;
