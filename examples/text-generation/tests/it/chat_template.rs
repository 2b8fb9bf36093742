//! Our chat-template rendering (minijinja) against transformers' `apply_chat_template` on the
//! same files, for a three-message conversation, with and without the generation prompt:
//! SmolLM2-135M-Instruct's template from its GGUF metadata, and a model folder whose
//! `tokenizer_config.json` has a template using Python string methods, slicing, `set`,
//! `raise_exception` and special tokens given as added-token objects.

use crate::tiny;

use std::path::Path;

use candle_core::quantized::gguf_file;
use example_support::test_models;
use serde_json::{json, Value};
use text_generation::chat::{ChatTemplate, TemplateMessage};

fn conversation() -> Vec<TemplateMessage> {
    vec![
        TemplateMessage::new("system", "  You are terse.\n"),
        TemplateMessage::new("user", "What is the capital of France?  "),
        TemplateMessage::new("assistant", " Paris. "),
    ]
}

/// transformers' renderings (`"True"`/`"False"`: with/without the generation prompt).
fn reference(mode: &str, path: &Path) -> Option<Value> {
    let python = test_models::python("RUNPOD_TEST_LLM_PYTHON")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/reference.py");
    let messages = serde_json::to_string(&conversation()).unwrap();
    let out =
        std::process::Command::new(python).args([script, mode]).arg(path).arg(messages).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn check(ours: &ChatTemplate, theirs: &Value) {
    for gen in [true, false] {
        let rendered = ours.render(&conversation(), gen).unwrap();
        assert_eq!(rendered, theirs[if gen { "True" } else { "False" }], "add_generation_prompt={gen}");
    }
}

#[test]
fn the_gguf_template_renders_as_transformers_renders_it() {
    let Some(file) = test_models::smollm2_gguf() else { return };
    let mut f = std::fs::File::open(&file).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let vocab = text_generation::gguf::vocab_from_gguf(&ct).unwrap();
    let source = ct.metadata["tokenizer.chat_template"].to_string().unwrap();
    let text = |id: Option<u32>| vocab.tokens[id.unwrap() as usize].clone();
    let ours = ChatTemplate::new(source, &text(vocab.bos), &text(vocab.eos.first().copied())).unwrap();
    let Some(theirs) = reference("template-gguf", &file) else { return };
    eprintln!("{}", theirs["True"]);
    check(&ours, &theirs);
    assert!(theirs["True"].as_str().unwrap().ends_with("<|im_start|>assistant\n"));
}

/// A template in the style of Llama 2's and Mistral's: system message folded into the first
/// user turn, contents stripped, roles checked.
const FOLDER_TEMPLATE: &str = "{% if messages[0]['role'] == 'system' %}\
{% set sys = messages[0]['content'].strip() %}{% set rest = messages[1:] %}\
{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}\
{{ bos_token }}\
{% for m in rest %}\
{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate') }}{% endif %}\
{% if m['role'] == 'user' %}[INST] {% if loop.first and sys %}<<SYS>>{{ sys }}<</SYS>> {% endif %}{{ m['content'].strip() }} [/INST]\
{% else %} {{ m['content'].strip() }}{{ eos_token }}{% endif %}\n\
{% endfor %}\
{%- if add_generation_prompt and rest[-1]['role'] == 'user' %} {% endif %}";

#[test]
fn a_folder_template_renders_as_transformers_renders_it() {
    let dir = tiny::write_model("chat-template");
    let config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
        "eos_token": "</s>",
        "chat_template": FOLDER_TEMPLATE,
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let ours = ChatTemplate::from_model_dir(&dir).unwrap().expect("a chat template");
    let theirs = reference("template-dir", &dir);
    tiny::remove(&dir);
    let Some(theirs) = theirs else { return };
    eprintln!("{}", theirs["False"]);
    check(&ours, &theirs);
    // The roles check is the template's own error, as a bad-input error.
    let wrong = [TemplateMessage::new("assistant", "first")];
    assert_eq!(ours.render(&wrong, true).unwrap_err().to_string(), "chat template: roles must alternate");
}
