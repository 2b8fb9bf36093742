//! The model's own chat template (Jinja, from `tokenizer_config.json` or GGUF metadata),
//! rendered with [minijinja](https://docs.rs/minijinja) the way Hugging Face's
//! `apply_chat_template` renders it: `trim_blocks`, `lstrip_blocks`, loop controls, Python
//! string methods (`.strip()`, `.split()`, ...), `raise_exception`, `tojson`.

use std::path::Path;

use minijinja::{Environment, ErrorKind};
use serde::Serialize;

use crate::model::GenerateError;

/// One message as the template sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateMessage {
    /// `system`, `user`, `assistant`, `tool`.
    pub role: String,
    /// The message's text.
    pub content: String,
}

impl TemplateMessage {
    /// A message.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

/// A compiled chat template with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("bos_token", &self.bos_token).finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct TokenizerConfig {
    chat_template: Option<TemplateField>,
    bos_token: Option<TokenField>,
    eos_token: Option<TokenField>,
}

/// `chat_template`: one template, or a list of named ones (`default` is used).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TemplateField {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(serde::Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

/// A special token given as a string or as an added-token object.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TokenField {
    Text(String),
    Added { content: String },
}

impl TokenField {
    fn text(self) -> String {
        match self {
            TokenField::Text(s) | TokenField::Added { content: s } => s,
        }
    }
}

fn raise_exception(message: String) -> Result<String, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

impl ChatTemplate {
    /// Compiles `source` (a Hugging Face chat template); `bos_token` / `eos_token` are the texts
    /// of those tokens, which templates insert themselves.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, GenerateError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| GenerateError::Internal(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.to_owned()).map_err(|e| {
            GenerateError::BadInput(format!("the model's chat template does not compile: {e}"))
        })?;
        Ok(Self { env, bos_token: bos_token.to_owned(), eos_token: eos_token.to_owned() })
    }

    /// The template of a model folder: `chat_template` in `tokenizer_config.json` (the
    /// `default` one when it lists several), else a `chat_template.jinja` file; `None` when the
    /// folder has neither.
    pub fn from_model_dir(dir: &Path) -> Result<Option<Self>, GenerateError> {
        let config: Option<TokenizerConfig> =
            example_support::load::read_json_if_present(&dir.join("tokenizer_config.json"))?;
        let Some(config) = config else { return Ok(None) };
        let source = match config.chat_template {
            Some(TemplateField::One(s)) => Some(s),
            Some(TemplateField::Named(list)) => {
                list.into_iter().find(|t| t.name == "default").map(|t| t.template)
            }
            None => None,
        };
        let source = match source {
            Some(s) => s,
            None => match std::fs::read_to_string(dir.join("chat_template.jinja")) {
                Ok(s) => s,
                Err(_) => return Ok(None),
            },
        };
        let bos = config.bos_token.map(TokenField::text).unwrap_or_default();
        let eos = config.eos_token.map(TokenField::text).unwrap_or_default();
        Self::new(&source, &bos, &eos).map(Some)
    }

    /// Renders the conversation; with `add_generation_prompt` the text ends where the
    /// assistant's answer starts. A template's `raise_exception` (roles out of order, ...) is a
    /// [`GenerateError::BadInput`] with its message.
    pub fn render(
        &self,
        messages: &[TemplateMessage],
        add_generation_prompt: bool,
    ) -> Result<String, GenerateError> {
        let template = self.env.get_template("chat").map_err(|e| GenerateError::Internal(e.to_string()))?;
        let ctx = minijinja::context! {
            messages => minijinja::value::Serde(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        template.render(ctx).map_err(|e| {
            let detail = match e.kind() {
                ErrorKind::InvalidOperation => e.detail().unwrap_or_default().to_owned(),
                _ => e.to_string(),
            };
            GenerateError::BadInput(format!("chat template: {detail}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_python_style_templates() {
        let source =
            "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{% continue %}{% endif %}\n\
            [{{ m.role.upper() }}] {{ m['content'].strip() }}\n{% endfor %}\n\
            {% if add_generation_prompt %}[ASSISTANT]{% endif %}";
        let t = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let msgs = [
            TemplateMessage::new("system", "skip me"),
            TemplateMessage::new("user", "  hi  "),
            TemplateMessage::new("assistant", "hello"),
        ];
        assert_eq!(t.render(&msgs, true).unwrap(), "<s>[USER] hi\n[ASSISTANT] hello\n[ASSISTANT]");
    }

    #[test]
    fn raise_exception_is_a_bad_input_error() {
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let e = t.render(&[], false).unwrap_err().to_string();
        assert_eq!(e, "chat template: roles must alternate");
        assert!(ChatTemplate::new("{% if %}", "", "").is_err());
    }
}
