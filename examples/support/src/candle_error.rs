//! candle's errors as text fit for a job's `error_message`.

/// candle's message without what it may add to it: the backtrace it appends when
/// `RUST_BACKTRACE` is set (paths of the machine that built the binary), and the folders of a
/// file's path (the file name stays).
pub fn candle_message(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => candle_message(inner),
        E::Context { inner, context } => format!("{context}: {}", candle_message(inner)),
        E::WithPath { inner, path } => {
            let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            format!("{name}: {}", candle_message(inner))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::candle_message;

    #[test]
    fn backtrace_and_folders_are_left_out() {
        let inner = candle_core::Error::Msg("bad weights".into());
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let with_path = candle_core::Error::WithPath {
            inner: Box::new(traced),
            path: std::path::PathBuf::from("/home/builder/models/model.safetensors"),
        };
        assert_eq!(candle_message(&with_path), "model.safetensors: bad weights");
    }
}
