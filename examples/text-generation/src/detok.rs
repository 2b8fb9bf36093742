//! Incremental detokenisation: turns a growing list of token ids into text deltas without
//! splitting multi-byte characters or word-piece joins.

use tokenizers::Tokenizer;

/// Decodes generated tokens one at a time. Keeps a small window (`prefix..read`) so each step
/// decodes only a few tokens, and holds back output while it ends in an incomplete character.
pub struct Detokenizer<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for Detokenizer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detokenizer")
            .field("ids", &self.ids.len())
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl<'a> Detokenizer<'a> {
    /// A detokenizer over `tokenizer` with no tokens yet.
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self { tokenizer, ids: Vec::new(), prefix: 0, read: 0 }
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.tokenizer.decode(ids, true).map_err(|e| e.to_string())
    }

    /// Adds one token; returns the new text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String, String> {
        self.ids.push(id);
        let before = self.decode(&self.ids[self.prefix..self.read])?;
        let now = self.decode(&self.ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') {
            if let Some(delta) = now.get(before.len()..).filter(|_| now.starts_with(&before)) {
                let delta = delta.to_owned();
                self.prefix = self.read;
                self.read = self.ids.len();
                return Ok(delta);
            }
        }
        Ok(String::new())
    }

    /// Text still held back (an incomplete character at the very end); call once at the end.
    pub fn finish(&mut self) -> Result<String, String> {
        let before = self.decode(&self.ids[self.prefix..self.read])?;
        let now = self.decode(&self.ids[self.prefix..])?;
        self.prefix = self.ids.len();
        self.read = self.ids.len();
        Ok(now.get(before.len()..).filter(|_| now.starts_with(&before)).unwrap_or_default().to_owned())
    }
}
