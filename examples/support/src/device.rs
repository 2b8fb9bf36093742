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

/// A fitness check for the device: a 64x64 matrix product on `device` must match the same
/// product on the CPU. On a GPU this shows that the driver initialises, memory can be
/// allocated and copied both ways, and a kernel computes the right answer (the Python SDK's
/// GPU checks do a matmul too). Blocking: run it on a blocking thread.
pub fn self_test(device: &Device) -> Result<(), String> {
    use candle_core::Tensor;
    let n = 64usize;
    let a: Vec<f32> = (0..n * n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0).collect();
    let product = |d: &Device| -> candle_core::Result<Vec<f32>> {
        let a = Tensor::from_slice(&a, (n, n), d)?;
        let b = Tensor::from_slice(&b, (n, n), d)?;
        a.matmul(&b)?.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()
    };
    let want = product(&Device::Cpu).map_err(|e| format!("the CPU reference product failed: {e}"))?;
    let got = product(device).map_err(|e| format!("a matrix product on {device:?} failed: {e}"))?;
    let worst = want.iter().zip(&got).map(|(w, g)| (w - g).abs()).fold(0f32, f32::max);
    // Inputs are multiples of 1/32 and sums of 64 products: exact in f32, but a GPU may use
    // TF32 or another summation order; 1e-2 still catches a wrong kernel or garbage memory.
    if worst > 1e-2 {
        return Err(format!("a 64x64 matrix product on {device:?} is wrong: off by up to {worst}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_test_passes_on_the_cpu() {
        self_test(&Device::Cpu).unwrap();
    }

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
