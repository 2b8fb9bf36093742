//! Content types guessed from file names, for uploads that do not give one.

/// The content type of a file called `name`, from its extension (case-insensitive);
/// `application/octet-stream` when unknown.
pub fn content_type_for(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') => ext.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "txt" | "log" => "text/plain; charset=utf-8",
        "csv" => "text/csv",
        "html" | "htm" => "text/html; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "json" => "application/json",
        "jsonl" => "application/jsonl",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "safetensors" | "bin" | "npy" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::content_type_for;

    #[test]
    fn guesses_by_extension() {
        assert_eq!(content_type_for("out.PNG"), "image/png");
        assert_eq!(content_type_for("dir/clip.mp4"), "video/mp4");
        assert_eq!(content_type_for("result.json"), "application/json");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
        assert_eq!(content_type_for(".hidden"), "application/octet-stream");
        assert_eq!(content_type_for("a.b/c"), "application/octet-stream");
    }
}
