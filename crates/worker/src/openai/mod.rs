//! The OpenAI-compatible route: the request types and their checks ([`types`]: plain wire
//! types), the response and stream-chunk builders ([`responder`]), and errors in OpenAI's shape
//! ([`error`]). Everything is re-exported here: `runpod_worker::openai::Request` and so on.
//!
//! A client of `https://api.runpod.ai/v2/{endpoint}/openai/v1/...` (or runpod-local's
//! `/v2/{endpoint}/openai/v1/...`) reaches the worker as an ordinary job whose input is
//! `{"openai_route": "/v1/chat/completions", "openai_input": <the request body>}` (see
//! `docs/openai.md`). [`Input`] decodes either that envelope or the handler's own input, so
//! one [`Handler`](crate::Handler) serves both. A streamed answer is a series of stream chunks
//! that are Server-Sent Events as text (`data: {...}\n\n`, ending with `data: [DONE]\n\n`),
//! which the platform relays to the client as they come; [`Responder`] builds them, or the
//! one response object when the client did not ask for a stream.
//!
//! ```
//! use runpod_worker::openai::{FinishReason, Input, Reply, Request, Responder, Usage};
//! use serde_json::json;
//!
//! #[derive(serde::Deserialize)]
//! struct Native { prompt: String }
//!
//! let job = json!({"openai_route": "/v1/chat/completions", "openai_input": {
//!     "model": "echo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}});
//! let input: Input<Native> = serde_json::from_value(job).unwrap();
//! let Input::OpenAi(Ok(Request::Chat(chat))) = input else { panic!("a chat request") };
//! assert_eq!(chat.messages[0].text().unwrap(), "Hi");
//!
//! let mut reply = Responder::new(&Request::Chat(chat), "echo", "job-1");
//! assert_eq!(reply.piece("Hello"), None); // not streamed: the text is kept for the response
//! let usage = Usage::new(3, 1);
//! let Reply::Response(body) = reply.finish(FinishReason::Stop, usage) else { panic!() };
//! assert_eq!(body["choices"][0]["message"]["content"], "Hello");
//! assert_eq!(body["usage"]["total_tokens"], 4);
//!
//! // A request the worker cannot serve is an OpenAI error (status 400 in `code`).
//! let bad = json!({"openai_route": "/v1/chat/completions", "openai_input": {"messages": [], "n": 2}});
//! let Input::OpenAi(Err(e)) = serde_json::from_value::<Input<Native>>(bad).unwrap() else { panic!() };
//! assert_eq!(e.status(), 400);
//! ```

mod error;
mod responder;
mod sse;
mod types;

pub use error::Error;
pub use responder::{model_list, FinishReason, Reply, Responder, Usage};
pub use sse::{sse_event, SSE_DONE};
pub use types::{
    ChatCompletionRequest, ChatMessage, Common, CompletionRequest, Content, ContentPart, Input, Prompt,
    Request, ResponseFormat, Role, Sampling, Stop, StreamOptions,
};

/// `openai_route` of `POST /openai/v1/chat/completions`.
pub const CHAT_COMPLETIONS_ROUTE: &str = "/v1/chat/completions";
/// `openai_route` of `POST /openai/v1/completions`.
pub const COMPLETIONS_ROUTE: &str = "/v1/completions";
/// `openai_route` of `GET /openai/v1/models`.
pub const MODELS_ROUTE: &str = "/v1/models";

/// Most stop sequences a request may give (OpenAI's limit).
pub const MAX_STOP: usize = 4;

/// Longest stop sequence, in bytes (ours: see docs/openai.md).
pub const MAX_STOP_BYTES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{json, Value};

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Native {
        prompt: String,
    }

    fn call(route: &str, body: Value) -> Result<Request, Error> {
        match serde_json::from_value::<Input<Native>>(json!({"openai_route": route, "openai_input": body})) {
            Ok(Input::OpenAi(r)) => r,
            other => panic!("not an OpenAI call: {other:?}"),
        }
    }

    #[test]
    fn native_input_decodes_and_names_fields() {
        let ok: Input<Native> = serde_json::from_value(json!({"prompt": "hi"})).unwrap();
        assert!(matches!(ok, Input::Native(Native { ref prompt }) if prompt == "hi"));
        let e = serde_json::from_value::<Input<Native>>(json!({"prompt": 1})).unwrap_err().to_string();
        assert!(e.contains("prompt") && e.contains("expected a string"), "{e}");
        let e = serde_json::from_value::<Input<Native>>(json!({"top_k": 1})).unwrap_err().to_string();
        assert!(e.contains("top_k"), "{e}");
    }

    #[test]
    fn real_client_bodies_decode() {
        let body = json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true},
            "max_completion_tokens": 9, "max_tokens": 3, "temperature": 0, "top_p": 0.5,
            "stop": "\n", "seed": -1, "n": 1, "user": "ignored", "presence_penalty": 0,
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null},
            ]
        });
        let Request::Chat(r) = call("/v1/chat/completions", body).unwrap() else { panic!() };
        assert_eq!(r.max_tokens(), Some(9));
        assert!(r.common.stream && r.common.include_usage());
        assert_eq!(r.messages[1].text().unwrap(), "a\nb");
        assert_eq!(r.messages[0].role.as_template_role(), "system");
        let s = r.sampling();
        assert_eq!((s.stop, s.seed, s.temperature), (vec!["\n".to_string()], Some(u64::MAX), Some(0.0)));

        let Request::Completion(c) =
            call("/v1/completions/", json!({"prompt": ["p"], "stop": ["a", "b"]})).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.prompt_text().unwrap(), "p");
        assert_eq!(c.sampling().max_tokens, Some(16));
        assert!(matches!(call("/v1/models", json!({})), Ok(Request::Models)));
        let models: Input<Native> = serde_json::from_value(json!({"openai_route": "/v1/models"})).unwrap();
        assert!(matches!(models, Input::OpenAi(Ok(Request::Models))));
    }

    #[test]
    fn what_cannot_be_served_is_a_clear_400_or_404() {
        let user = json!([{"role": "user", "content": "x"}]);
        for (body, param, says) in [
            (json!({"messages": user, "n": 2}), "n", "only n = 1"),
            (json!({"messages": []}), "messages", "at least one"),
            (json!({"messages": user, "temperature": 3}), "temperature", "between 0 and 2"),
            (json!({"messages": user, "top_p": 0}), "top_p", "(0, 1]"),
            (json!({"messages": user, "max_tokens": 0}), "max_tokens", "at least 1"),
            (json!({"messages": user, "stop": ["a", "b", "c", "d", "e"]}), "stop", "at most 4"),
            (json!({"messages": user, "stop": "x".repeat(1 << 20)}), "stop", "at most 256 bytes"),
            (json!({"messages": user, "stop": ["a", "y".repeat(257)]}), "stop", "at most 256 bytes"),
            (json!({"messages": user, "temperature": 1e308}), "temperature", "between 0 and 2"),
            (json!({"messages": user, "temperature": -0.5}), "temperature", "between 0 and 2"),
            (
                json!({"messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role",
                "unknown variant",
            ),
            (json!({"messages": "hello"}), "messages", "expected a sequence"),
            // A field of the part both request kinds share is named like any other.
            (json!({"messages": user, "temperature": "hot"}), "temperature", "expected f64"),
            (json!({"messages": user, "stop": 7}), "stop", "did not match any variant"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
                "messages",
                "image_url",
            ),
        ] {
            let e = call("/v1/chat/completions", body.clone()).unwrap_err();
            assert_eq!((e.status(), e.kind()), (400, "invalid_request_error"), "{body}");
            assert_eq!(e.param(), Some(param), "{body}: {e}");
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
        let e = call("/v1/completions", json!({"prompt": [[1, 2]]})).unwrap_err();
        assert_eq!(e.param(), Some("prompt"));
        let e = call("/v1/embeddings", json!({})).unwrap_err();
        assert_eq!(e.status(), 404);
        let e = call("/v1/chat/completions", json!([1])).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.clone().into_output()["error"]["code"], 400);
    }

    #[test]
    fn a_model_not_served_is_openais_404_model_not_found() {
        let user = json!([{"role": "user", "content": "x"}]);
        let req = call("/v1/chat/completions", json!({"model": "gpt-4o", "messages": user})).unwrap();
        assert_eq!(req.model(), Some("gpt-4o"));
        let e = req.check_model(&["smollm2"]).unwrap_err();
        assert_eq!(
            (e.status(), e.kind(), e.code(), e.param()),
            (404, "not_found_error", Some("model_not_found"), Some("model"))
        );
        let body = e.into_output();
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["type"], "not_found_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("gpt-4o"), "{body}");
        assert!(req.check_model(&["smollm2", "gpt-4o"]).is_ok());
        let unnamed = call("/v1/completions", json!({"prompt": "p"})).unwrap();
        assert!(unnamed.check_model(&["smollm2"]).is_ok(), "no model named: the worker's own");
        assert!(Request::Models.check_model(&["smollm2"]).is_ok());
        // Errors without a code of their own carry the status in `code`, as vLLM does.
        assert_eq!(Error::invalid_request("x").body()["code"], 400);
    }

    #[test]
    fn streamed_chat_is_sse_with_role_first_usage_last_and_done() {
        let req = call(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "stream": true,
                   "stream_options": {"include_usage": true}}),
        )
        .unwrap();
        let mut r = Responder::new(&req, "m", "j1");
        assert!(r.is_streaming());
        assert_eq!(r.piece(""), None);
        let first = r.piece("Hel").unwrap();
        let second = r.piece("lo").unwrap();
        let Reply::Stream(tail) = r.finish(FinishReason::Length, Usage::new(5, 2)) else { panic!() };
        let events: Vec<Value> = [first, second, tail]
            .concat()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_prefix("data: ").unwrap())
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "Hel"}));
        assert_eq!(events[1]["choices"][0]["delta"], json!({"content": "lo"}));
        assert_eq!(events[2]["choices"][0]["finish_reason"], "length");
        assert_eq!(events[3]["choices"], json!([]));
        assert_eq!(
            events[3]["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
        );
        assert!(events.iter().all(|e| e["id"] == "chatcmpl-j1" && e["object"] == "chat.completion.chunk"));
    }

    #[test]
    fn completion_response_and_model_list() {
        let req = call("/v1/completions", json!({"prompt": "p"})).unwrap();
        let mut r = Responder::new(&req, "m", "j2");
        assert_eq!(r.piece("a"), None);
        r.piece("b");
        let Reply::Response(v) = r.finish(FinishReason::Stop, Usage::new(1, 2)) else { panic!() };
        assert_eq!((v["object"].as_str(), v["id"].as_str()), (Some("text_completion"), Some("cmpl-j2")));
        assert_eq!(v["choices"][0]["text"], "ab");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let list = model_list(&["a", "b"]);
        assert_eq!(list["data"][1]["id"], "b");
        assert_eq!(list["data"][0]["object"], "model");
    }
}
