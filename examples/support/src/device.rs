//! Which device the model runs on: `DEVICE` (`cpu`, `cuda`, `cuda:N`), else the build's default.
//!
//! A `cuda` build (this crate's `cuda` feature, which each example's own `cuda` feature turns on)
//! defaults to GPU 0 and fails clearly when none can be opened, rather than quietly running a GPU
//! worker on the CPU; `DEVICE=cpu` runs it on the CPU on purpose.

use candle_core::Device;

/// The environment variable that chooses the device.
pub const DEVICE_ENV: &str = "DEVICE";

/// A device choice, parsed from `DEVICE` before anything is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

/// Why no device could be chosen or opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// `DEVICE` holds something other than `cpu`, `cuda` or `cuda:N`.
    #[error("{DEVICE_ENV}={0:?} is not a device: use cpu, cuda or cuda:N")]
    Unknown(String),
    /// A GPU was asked for, but this binary was built without the `cuda` feature.
    #[error(
        "{DEVICE_ENV}={0:?} needs a GPU build: rebuild with `--features cuda` (or set {DEVICE_ENV}=cpu)"
    )]
    NotBuilt(String),
    /// The CUDA device could not be opened (no GPU, no driver, or a driver too old).
    #[error(
        "cannot open CUDA device {ordinal} (is an NVIDIA GPU visible, e.g. `docker run --gpus all`? \
         {DEVICE_ENV}=cpu runs on the CPU): {reason}"
    )]
    Cuda {
        /// The device ordinal asked for.
        ordinal: usize,
        /// What candle (the CUDA driver) said; in the message, so not also a `source`.
        reason: candle_core::Error,
    },
}

impl DeviceChoice {
    /// Parses a `DEVICE` value; `None` (unset or empty) gives GPU 0 in a `cuda` build, else the CPU.
    pub fn parse(value: Option<&str>) -> Result<Self, DeviceError> {
        let value = value.map(str::trim).unwrap_or_default();
        let choice = match value.to_ascii_lowercase().as_str() {
            "" if cfg!(feature = "cuda") => Self::Cuda(0),
            "" | "cpu" => Self::Cpu,
            "cuda" | "gpu" => Self::Cuda(0),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Self::Cuda(n),
                _ => return Err(DeviceError::Unknown(value.to_owned())),
            },
        };
        if matches!(choice, Self::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(DeviceError::NotBuilt(value.to_owned()));
        }
        Ok(choice)
    }

    /// Opens the device.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => {
                Device::new_cuda(ordinal).map_err(|reason| DeviceError::Cuda { ordinal, reason })
            }
        }
    }
}

/// The device `DEVICE` names (see the module doc), opened.
pub fn pick_device() -> Result<Device, DeviceError> {
    DeviceChoice::parse(std::env::var(DEVICE_ENV).ok().as_deref())?.open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_junk() {
        assert_eq!(DeviceChoice::parse(Some("cpu")).unwrap(), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::parse(Some(" CPU ")).unwrap(), DeviceChoice::Cpu);
        let err = DeviceChoice::parse(Some("tpu")).unwrap_err().to_string();
        assert!(err.contains("\"tpu\" is not a device"), "{err}");
        assert!(DeviceChoice::parse(Some("cuda:x")).is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cpu_build_defaults_to_cpu_and_refuses_cuda() {
        assert_eq!(DeviceChoice::parse(None).unwrap(), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::parse(Some("")).unwrap(), DeviceChoice::Cpu);
        assert!(matches!(DeviceChoice::parse(None).unwrap().open(), Ok(Device::Cpu)));
        for v in ["cuda", "cuda:1", "gpu"] {
            let err = DeviceChoice::parse(Some(v)).unwrap_err();
            assert!(matches!(err, DeviceError::NotBuilt(_)), "{v}: {err}");
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_build_defaults_to_gpu_zero() {
        assert_eq!(DeviceChoice::parse(None).unwrap(), DeviceChoice::Cuda(0));
        assert_eq!(DeviceChoice::parse(Some("cuda:1")).unwrap(), DeviceChoice::Cuda(1));
    }
}
