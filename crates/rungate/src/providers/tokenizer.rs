//! Exact input-token counts for OpenAI models, with OpenAI's own BPE vocabularies
//! (tiktoken-rs). Budget admission first uses a cheap, deliberately high estimate; only when
//! that estimate would refuse or clamp a call does the proxy pay for an exact count, so a run
//! near its cap is judged on the real figure while the common path stays cheap.

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Tokens OpenAI adds around every message, and to prime the reply (OpenAI cookbook).
const PER_MESSAGE: u64 = 3;
const PER_NAME: u64 = 1;
const REPLY_PRIMING: u64 = 3;

/// The vocabulary of an OpenAI model, when known.
fn vocabulary(model: &str) -> Option<&'static CoreBPE> {
    let model = model.rsplit_once('/').map_or(model, |(_, m)| m);
    let o200k = [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "chatgpt-4o",
    ];
    if o200k.iter().any(|prefix| model.starts_with(prefix)) {
        return Some(tiktoken_rs::o200k_base_singleton());
    }
    if model.starts_with("gpt-4") || model.starts_with("gpt-3.5") {
        return Some(tiktoken_rs::cl100k_base_singleton());
    }
    None
}

/// Input tokens of an OpenAI Chat Completions request, or `None` for a model whose vocabulary
/// is unknown, a body that is not the expected shape, or content that is not text (images and
/// audio are priced by rules of their own; the caller keeps its conservative estimate then).
/// Tool definitions are counted as their JSON text, which errs high.
pub fn count_openai_input(model: &str, body: &[u8]) -> Option<u64> {
    let bpe = vocabulary(model)?;
    let request: Value = serde_json::from_slice(body).ok()?;
    let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
    let mut tokens = REPLY_PRIMING;
    for message in request.get("messages")?.as_array()? {
        tokens += PER_MESSAGE;
        if let Some(role) = message.get("role").and_then(Value::as_str) {
            tokens += count(role);
        }
        if let Some(name) = message.get("name").and_then(Value::as_str) {
            tokens += PER_NAME + count(name);
        }
        match message.get("content") {
            Some(Value::String(text)) => tokens += count(text),
            Some(Value::Array(parts)) => {
                for part in parts {
                    tokens += count(part.get("text").and_then(Value::as_str)?);
                }
            }
            _ => {}
        }
        if let Some(calls) = message.get("tool_calls") {
            tokens += count(&calls.to_string());
        }
    }
    if let Some(tools) = request.get("tools") {
        tokens += count(&tools.to_string());
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_openais_published_examples() {
        // "Hello world" is two tokens in both vocabularies; one user message adds 3 + role (1)
        // and the reply priming 3.
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello world"}]}"#;
        assert_eq!(count_openai_input("gpt-4o", body), Some(3 + 3 + 1 + 2));
        assert_eq!(count_openai_input("gpt-4-turbo", body), Some(3 + 3 + 1 + 2));
        assert_eq!(count_openai_input("claude-sonnet-4", body), None);
        assert_eq!(count_openai_input("gpt-4o", b"not json"), None);
        let image = br#"{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(
            count_openai_input("gpt-4o", image),
            None,
            "images are not counted as text"
        );
    }

    #[test]
    fn exact_counts_are_below_the_conservative_estimate_for_prose() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(50);
        let body =
            serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
                .to_string();
        let exact = count_openai_input("gpt-4o", body.as_bytes()).unwrap_or(u64::MAX);
        assert!(
            exact < crate::budget::estimate_input_tokens(text.len()),
            "{exact}"
        );
    }
}
