//! What a model is asked to continue, and how it becomes token ids. A raw prompt (the native
//! input, `/v1/completions`) is the caller's whole model input: special tokens written in it
//! are read as such. A chat prompt keeps the chat template's own markup apart from the text
//! that came from the request: only the markup becomes control tokens, and `<|im_start|>`
//! typed in a message is tokenized as the characters it is made of.

use tokenizers::Tokenizer;

use crate::error::GenerateError;

/// One piece of a rendered chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A special token the template itself wrote (`<|im_start|>`, the BOS token, ...).
    Special(String),
    /// Everything else, request text included: tokenized with no special token recognised.
    Text(String),
}

/// A conversation rendered by its chat template, split into markup and text
/// (see [`crate::chat::ChatTemplate::render_prompt`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatPrompt {
    pieces: Vec<Piece>,
}

impl ChatPrompt {
    /// A prompt of these pieces.
    pub fn new(pieces: Vec<Piece>) -> Self {
        Self { pieces }
    }

    /// The pieces in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The whole text, as the template rendered it.
    pub fn text(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Special(s) | Piece::Text(s) => s.as_str(),
            })
            .collect()
    }
}

/// What a model is asked to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt<'a> {
    /// Text the caller wrote as the model reads it: special tokens in it are matched.
    Raw(&'a str),
    /// A rendered chat: only the template's markup makes special tokens.
    Chat(&'a ChatPrompt),
}

impl<'a> From<&'a str> for Prompt<'a> {
    fn from(s: &'a str) -> Self {
        Prompt::Raw(s)
    }
}

impl<'a> From<&'a String> for Prompt<'a> {
    fn from(s: &'a String) -> Self {
        Prompt::Raw(s)
    }
}

impl<'a> From<&'a ChatPrompt> for Prompt<'a> {
    fn from(p: &'a ChatPrompt) -> Self {
        Prompt::Chat(p)
    }
}

/// A special added token of a tokenizer.
#[derive(Debug, Clone)]
struct SpecialToken {
    text: String,
    id: u32,
    lstrip: bool,
    rstrip: bool,
}

/// Turns prompts into token ids with one tokenizer, used two ways: as it is (special tokens in
/// the text are matched) and with its special tokens switched off (their texts are split like
/// any other text, what llama.cpp calls `parse_special = false`; tokens that are added but not
/// special still match).
#[derive(Debug, Clone)]
pub struct PromptEncoder {
    tokenizer: Tokenizer,
    plain: Tokenizer,
    special: Vec<SpecialToken>,
}

impl PromptEncoder {
    /// An encoder over `tokenizer`; its special tokens are its added tokens marked `special`.
    pub fn new(tokenizer: Tokenizer) -> Self {
        let mut plain = tokenizer.clone();
        plain.set_encode_special_tokens(true);
        let mut special: Vec<SpecialToken> = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special && !t.content.is_empty())
            .map(|(id, t)| SpecialToken { text: t.content, id, lstrip: t.lstrip, rstrip: t.rstrip })
            .collect();
        special.sort_by(|a, b| a.text.cmp(&b.text).then(a.id.cmp(&b.id)));
        special.dedup_by(|a, b| a.text == b.text);
        Self { tokenizer, plain, special }
    }

    /// The tokenizer, special tokens matched.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The texts of the special tokens (sorted).
    pub fn special_tokens(&self) -> Vec<String> {
        self.special.iter().map(|t| t.text.clone()).collect()
    }

    /// The token ids of `prompt`. `add_special_tokens` runs the tokenizer's post-processor
    /// (a BOS token, for example) on a raw prompt; a chat prompt never gets one, since its
    /// template writes its own markup.
    pub fn encode(&self, prompt: Prompt<'_>, add_special_tokens: bool) -> Result<Vec<u32>, GenerateError> {
        let tok_err = |e: tokenizers::Error| GenerateError::Tokenizer(e.to_string());
        match prompt {
            Prompt::Raw(text) => {
                Ok(self.tokenizer.encode(text, add_special_tokens).map_err(tok_err)?.get_ids().to_vec())
            }
            Prompt::Chat(chat) => {
                let pieces = chat.pieces();
                let mut ids = Vec::new();
                for (i, piece) in pieces.iter().enumerate() {
                    match piece {
                        Piece::Special(text) => {
                            let token = self.find(text).ok_or_else(|| {
                                GenerateError::Internal(format!("'{text}' is not a special token"))
                            })?;
                            ids.push(token.id);
                        }
                        Piece::Text(text) => {
                            // An `lstrip`/`rstrip` special token takes the whitespace next to
                            // it, as the tokenizer does when it meets the token in a text.
                            let mut text = text.as_str();
                            if let Some(Piece::Special(next)) = pieces.get(i + 1) {
                                if self.find(next).is_some_and(|t| t.lstrip) {
                                    text = text.trim_end();
                                }
                            }
                            if let Some(Piece::Special(prev)) = i.checked_sub(1).and_then(|p| pieces.get(p)) {
                                if self.find(prev).is_some_and(|t| t.rstrip) {
                                    text = text.trim_start();
                                }
                            }
                            if !text.is_empty() {
                                ids.extend_from_slice(
                                    self.plain.encode(text, false).map_err(tok_err)?.get_ids(),
                                );
                            }
                        }
                    }
                }
                Ok(ids)
            }
        }
    }

    fn find(&self, text: &str) -> Option<&SpecialToken> {
        self.special.binary_search_by(|t| t.text.as_str().cmp(text)).ok().map(|i| &self.special[i])
    }
}

/// Finds special-token texts in a string: at each position the longest one that starts
/// there, leftmost first (as the tokenizers' added-token split does).
#[derive(Debug, Clone)]
pub(crate) struct SpecialMatcher<'a> {
    /// Longest first, so that the first match at a position is the longest.
    tokens: Vec<&'a str>,
}

impl<'a> SpecialMatcher<'a> {
    pub(crate) fn new(tokens: &'a [String]) -> Self {
        let mut tokens: Vec<&str> = tokens.iter().map(String::as_str).filter(|t| !t.is_empty()).collect();
        tokens.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        Self { tokens }
    }

    /// The special token that starts `text`, the longest when several do.
    pub(crate) fn at(&self, text: &str) -> Option<&'a str> {
        let first = *text.as_bytes().first()?;
        self.tokens.iter().copied().find(|t| t.as_bytes()[0] == first && text.starts_with(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words, spaces and punctuation each a token; `<s>` special (and the BOS of the
    /// post-processor), `</s>` special and taking the whitespace on both sides.
    fn tokenizer() -> Tokenizer {
        let vocab = serde_json::json!({"<unk>": 0, "<s>": 1, "</s>": 2, "hi": 3, "there": 4, " ": 5,
            "<": 6, "/": 7, "s": 8, ">": 9});
        let added = |id: u32, content: &str, strip: bool| {
            serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": strip,
                "rstrip": strip, "normalized": false, "special": true})
        };
        let spec = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "normalizer": null, "decoder": null,
            "added_tokens": [added(1, "<s>", false), added(2, "</s>", true)],
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": false},
                {"type": "Punctuation", "behavior": "Isolated"}]},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        });
        Tokenizer::from_bytes(spec.to_string()).unwrap()
    }

    #[test]
    fn chat_text_is_tokenized_as_the_tokenizer_would_but_its_special_tokens_stay_text() {
        let e = PromptEncoder::new(tokenizer());
        assert_eq!(e.special_tokens(), ["</s>", "<s>"]);
        let special = |s: &str| Piece::Special(s.into());
        let text = |s: &str| Piece::Text(s.into());
        // Markup in special pieces: the ids the tokenizer gives the whole text, `</s>` taking
        // the spaces next to it; no post-processor BOS.
        let chat = ChatPrompt::new(vec![special("<s>"), text("hi "), special("</s>"), text(" there")]);
        let raw = "<s>hi </s> there";
        assert_eq!(chat.text(), raw);
        assert_eq!(e.encode(Prompt::Chat(&chat), true).unwrap(), [1, 3, 2, 4]);
        assert_eq!(e.encode(Prompt::Raw(raw), false).unwrap(), [1, 3, 2, 4]);
        assert_eq!(e.encode(Prompt::Raw(raw), true).unwrap(), [1, 1, 3, 2, 4]);
        // The same token in a text piece is its characters.
        let typed = ChatPrompt::new(vec![special("<s>"), text("hi </s> there")]);
        assert_eq!(e.encode(Prompt::Chat(&typed), false).unwrap(), [1, 3, 5, 6, 7, 8, 9, 5, 4]);
    }

    #[test]
    fn the_longest_special_token_matches() {
        let list = ["<s>".to_string(), "<s>x".to_string(), "</s>".to_string()];
        let m = SpecialMatcher::new(&list);
        assert_eq!(m.at("<s>xy"), Some("<s>x"));
        assert_eq!(m.at("<s>y"), Some("<s>"));
        assert_eq!(m.at("</s"), None);
        assert_eq!(m.at(""), None);
    }
}
