//! Text from a server made safe for a terminal: an error message could otherwise carry escape
//! sequences that retitle the window, clear the screen or rewrite what was printed before.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) and every bidirectional-override
/// character escaped as `\u{..}`; unchanged (borrowed) when it holds none.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal acts on or that reorder the text shown around them.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes one line to stderr, escaped with [`printable`].
pub(crate) fn say(line: &str) {
    eprintln!("{}", printable(line));
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_controls_only() {
        assert_eq!(printable("plain é ü"), "plain é ü");
        assert_eq!(printable("a\u{1b}[2Jb\u{7}\u{9b}c\u{202e}"), "a\\u{1b}[2Jb\\u{7}\\u{9b}c\\u{202e}");
        assert_eq!(printable("line\nnext\r"), "line\\u{a}next\\u{d}");
    }
}
