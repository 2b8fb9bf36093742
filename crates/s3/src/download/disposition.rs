//! The file name a server gives in `Content-Disposition` (RFC 6266): `filename*=UTF-8''...`
//! (percent-encoded) wins over `filename="..."`; only the last path segment is kept.

/// The file name of a `Content-Disposition` value, or `None` when it names none.
pub(crate) fn file_name(header: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for part in split_params(header) {
        let Some((key, value)) = part.split_once('=') else { continue };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => extended = decode_ext(value.trim()),
            "filename" => plain = Some(unquote(value.trim())),
            _ => {}
        }
    }
    let name = extended.or(plain)?;
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default().trim().to_owned();
    (!last.is_empty() && last != "." && last != "..").then_some(last)
}

/// Splits at `;` outside double quotes.
fn split_params(s: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
            }
            out
        }
        None => v.to_owned(),
    }
}

/// `UTF-8'lang'percent%20encoded` (RFC 5987); other charsets are not decoded.
fn decode_ext(v: &str) -> Option<String> {
    let mut it = v.splitn(3, '\'');
    let (charset, _lang, encoded) = (it.next()?, it.next()?, it.next()?);
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={}", encoded.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn names_from_headers() {
        assert_eq!(file_name(r#"attachment; filename="report.pdf""#).as_deref(), Some("report.pdf"));
        assert_eq!(file_name("attachment; filename=data.zip").as_deref(), Some("data.zip"));
        assert_eq!(
            file_name(r#"attachment; filename="fallback.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9+1.txt"#)
                .as_deref(),
            Some("résumé+1.txt")
        );
        assert_eq!(file_name(r#"attachment; filename="a;b.txt""#).as_deref(), Some("a;b.txt"));
        assert_eq!(file_name(r#"attachment; filename="../../etc/passwd""#).as_deref(), Some("passwd"));
        assert_eq!(file_name(r#"attachment; filename="C:\\x\\evil.bat""#).as_deref(), Some("evil.bat"));
        assert_eq!(file_name("inline").as_deref(), None);
        assert_eq!(file_name(r#"attachment; filename="..""#).as_deref(), None);
        assert_eq!(file_name("attachment; filename*=ISO-8859-1''x.txt").as_deref(), None);
    }
}
