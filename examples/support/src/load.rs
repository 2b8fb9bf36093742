//! Reading a model folder: JSON configs, `tokenizer.json` and safetensors weights, each failure
//! an error that names the file.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

/// Why a file of a model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A model file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file (`config.json`, ...) does not hold what the model expects.
    #[error("invalid {path}: {source}")]
    Config {
        /// The file that failed.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `tokenizer.json` is not a tokenizer.
    #[error("tokenizer: {}: {message}", path.display())]
    Tokenizer {
        /// The file that failed.
        path: PathBuf,
        /// What the tokenizers library said.
        message: String,
    },
    /// The weights could not be mapped (not a safetensors file, ...).
    #[error("model: {0}")]
    Weights(#[from] candle_core::Error),
}

fn not_found(path: PathBuf) -> LoadError {
    LoadError::Read { path, source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file") }
}

/// The bytes of `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })
}

/// `path` parsed as JSON into `T` (a model's `config.json`, ...).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    serde_json::from_slice(&read(path)?).map_err(|source| LoadError::Config { path: path.to_owned(), source })
}

/// Like [`read_json`] for a file a model may leave out: `None` when `path` does not exist.
pub fn read_json_if_present<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, LoadError> {
    match read_json(path) {
        Err(LoadError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

/// The tokenizer in `path` (a `tokenizer.json`), as shipped: padding and truncation are the
/// caller's to set.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, LoadError> {
    Tokenizer::from_bytes(read(path)?)
        .map_err(|e| LoadError::Tokenizer { path: path.to_owned(), message: e.to_string() })
}

/// The weight files of the model in `dir`: `model.safetensors` and every `model-*.safetensors`
/// shard, sorted by name. None is an error naming `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut weights: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Read { path: dir.to_owned(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".safetensors") && (name == "model.safetensors" || name.starts_with("model-"))
        })
        .collect();
    weights.sort();
    if weights.is_empty() {
        return Err(not_found(dir.join("model.safetensors")));
    }
    Ok(weights)
}

/// Memory-maps the safetensors `files` into a [`VarBuilder`] that hands out `dtype` tensors on
/// `device`; a missing file is a [`LoadError::Read`] naming it.
///
/// # Safety
///
/// The files are mapped, not copied: none may be modified or truncated while the returned
/// builder, or a model built from it, lives (model folders are read-only inputs).
#[allow(unsafe_code, reason = "memory-mapped weights load without a copy")]
pub unsafe fn mmap_weights(
    files: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>, LoadError> {
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        return Err(not_found(missing.clone()));
    }
    // SAFETY: the caller promises the files stay unchanged while the mapping lives.
    Ok(unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_invalid_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        let err = read_json::<serde_json::Value>(&config).unwrap_err();
        assert!(matches!(err, LoadError::Read { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot read ") && err.to_string().contains("config.json"));
        assert!(read_json_if_present::<serde_json::Value>(&config).unwrap().is_none());

        std::fs::write(&config, "{not json").unwrap();
        for err in [
            read_json::<serde_json::Value>(&config).unwrap_err(),
            read_json_if_present::<serde_json::Value>(&config).unwrap_err(),
        ] {
            assert!(matches!(err, LoadError::Config { .. }), "{err}");
            assert!(err.to_string().starts_with("invalid ") && err.to_string().contains("config.json"));
        }
        std::fs::write(&config, r#"{"hidden_size": 8}"#).unwrap();
        let v: serde_json::Value = read_json_if_present(&config).unwrap().unwrap();
        assert_eq!(v["hidden_size"], 8);

        let tok = dir.path().join("tokenizer.json");
        assert!(matches!(load_tokenizer(&tok).unwrap_err(), LoadError::Read { .. }));
        std::fs::write(&tok, "{}").unwrap();
        let err = load_tokenizer(&tok).unwrap_err().to_string();
        assert!(err.starts_with("tokenizer: ") && err.contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn weight_files_finds_the_single_file_or_the_shards_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let err = weight_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("model.safetensors") && err.contains("no such file"), "{err}");
        for name in
            ["model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors", "other.safetensors"]
        {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<String> = weight_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
        assert!(weight_files(&dir.path().join("nope")).is_err());
    }

    #[test]
    #[allow(unsafe_code, reason = "tests the memory-mapped loader")]
    fn mmap_weights_reads_safetensors_and_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        // SAFETY: nothing writes the (missing) file.
        let err =
            unsafe { mmap_weights(std::slice::from_ref(&file), DType::F32, &Device::Cpu) }.err().unwrap();
        assert!(matches!(err, LoadError::Read { .. }) && err.to_string().contains("model.safetensors"));

        let t = candle_core::Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        candle_core::safetensors::save(&std::collections::HashMap::from([("w", t)]), &file).unwrap();
        // SAFETY: the test does not touch the file while the builder lives.
        let vb = unsafe { mmap_weights(std::slice::from_ref(&file), DType::F32, &Device::Cpu) }.unwrap();
        assert_eq!(vb.get(3, "w").unwrap().to_vec1::<f32>().unwrap(), [1., 2., 3.]);
        drop(vb); // unmapped before the file is rewritten

        std::fs::write(&file, b"not safetensors").unwrap();
        // SAFETY: as above.
        let err = unsafe { mmap_weights(&[file], DType::F32, &Device::Cpu) }.err().unwrap();
        assert!(matches!(err, LoadError::Weights(_)) && err.to_string().starts_with("model: "), "{err}");
    }
}
