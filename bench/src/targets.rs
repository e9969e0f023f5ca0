//! The targets every scenario measures, in the order of odd rounds, and what each must answer.
//!
//! All of them are sent the same OpenAI chat body (one short user message) on
//! `POST /v1/chat/completions`; only the model name and the bearer token differ. The translated
//! targets name another provider's model (`anthropic/claude-sonnet-4-5`, `gemini/gemini-2.5-flash`),
//! so the gateway translates the call to that provider's format and the answer back; the failover
//! target sends `gpt-4o-mini` to an OpenAI key whose mock answers 500, and its policy's routing
//! moves the call to Anthropic. Before anything is timed, [`check_answer`] proves that each target
//! really took its path: an OpenAI-shaped answer with the mock's echo, from the expected provider,
//! after the expected number of failovers.

use anyhow::{Context, Result};
use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::Value;

/// How many targets there are.
pub const COUNT: usize = 7;

/// One way of reaching the mock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The mock itself.
    Direct,
    /// The bare hop: the ceiling for any proxy in series.
    Forwarder,
    /// The gateway, as the agent without a policy: the plain path.
    Gateway,
    /// The gateway, as the agent whose policy sets every rule.
    Governed,
    /// The gateway translating OpenAI chat to Anthropic messages and back.
    TranslatedAnthropic,
    /// The gateway translating OpenAI chat to Gemini `generateContent` and back.
    TranslatedGemini,
    /// One failed OpenAI attempt (500), then the same call translated to Anthropic.
    Failover,
}

impl Target {
    pub const ALL: [Target; COUNT] = [
        Target::Direct,
        Target::Forwarder,
        Target::Gateway,
        Target::Governed,
        Target::TranslatedAnthropic,
        Target::TranslatedGemini,
        Target::Failover,
    ];

    /// The gateway targets other than `gateway` itself, each compared with the plain path.
    pub const BESIDE_PLAIN: [Target; 4] = [
        Target::Governed,
        Target::TranslatedAnthropic,
        Target::TranslatedGemini,
        Target::Failover,
    ];

    /// The index into per-target arrays (the order of [`Target::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in the table and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Forwarder => "forwarder",
            Target::Gateway => "gateway",
            Target::Governed => "governed",
            Target::TranslatedAnthropic => "translated-anthropic",
            Target::TranslatedGemini => "translated-gemini",
            Target::Failover => "failover",
        }
    }

    /// The key in the JSON report.
    pub fn json_key(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Forwarder => "forwarder",
            Target::Gateway => "gateway",
            Target::Governed => "governed",
            Target::TranslatedAnthropic => "translated_anthropic",
            Target::TranslatedGemini => "translated_gemini",
            Target::Failover => "failover",
        }
    }

    /// The model the request body names.
    pub fn model(self) -> &'static str {
        match self {
            Target::TranslatedAnthropic => "anthropic/claude-sonnet-4-5",
            Target::TranslatedGemini => "gemini/gemini-2.5-flash",
            Target::Direct
            | Target::Forwarder
            | Target::Gateway
            | Target::Governed
            | Target::Failover => "gpt-4o-mini",
        }
    }

    pub fn through_gateway(self) -> bool {
        !matches!(self, Target::Direct | Target::Forwarder)
    }

    /// The provider the gateway must say answered (`x-rungate-provider`), and after how many
    /// failovers (`x-rungate-failover`); `None` for the targets that skip the gateway.
    fn answered_by(self) -> Option<(&'static str, &'static str)> {
        match self {
            Target::Direct | Target::Forwarder => None,
            Target::Gateway | Target::Governed => Some(("openai", "0")),
            Target::TranslatedAnthropic => Some(("anthropic", "0")),
            Target::TranslatedGemini => Some(("gemini", "0")),
            Target::Failover => Some(("anthropic", "1")),
        }
    }

    /// Steps the gateway records per call: the failed attempt is a step of its own.
    pub fn steps_per_call(self) -> u64 {
        match self {
            Target::Failover => 2,
            Target::Direct
            | Target::Forwarder
            | Target::Gateway
            | Target::Governed
            | Target::TranslatedAnthropic
            | Target::TranslatedGemini => 1,
        }
    }
}

/// The text the mock answers to [`USER_MESSAGE`].
pub const USER_MESSAGE: &str = "Say hello in one word.";

/// The request body of `target`: one short user message, streamed or not.
pub fn chat_body(target: Target, stream: bool) -> Bytes {
    let mut body = serde_json::json!({
        "model": target.model(),
        "messages": [{"role": "user", "content": USER_MESSAGE}],
    });
    if stream {
        body["stream"] = Value::Bool(true);
    }
    Bytes::from(body.to_string())
}

/// Fails unless one answer of `target` is what its path must produce: OpenAI chat JSON (or chunks)
/// carrying the mock's echo, answered by the expected provider after the expected failovers.
pub fn check_answer(target: Target, stream: bool, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    if let Some((provider, failovers)) = target.answered_by() {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        anyhow::ensure!(
            header("x-rungate-provider") == Some(provider),
            "answered by provider {:?}, expected {provider}",
            header("x-rungate-provider")
        );
        anyhow::ensure!(
            header("x-rungate-failover") == Some(failovers),
            "{:?} failovers, expected {failovers}",
            header("x-rungate-failover")
        );
    }
    let text = if stream {
        streamed_text(body)?
    } else {
        let answer: Value = serde_json::from_slice(body).context("the answer is not JSON")?;
        anyhow::ensure!(
            answer["object"] == "chat.completion",
            "not an OpenAI chat.completion: {answer}"
        );
        answer["choices"][0]["message"]["content"]
            .as_str()
            .with_context(|| format!("no choices[0].message.content: {answer}"))?
            .to_owned()
    };
    let expected = format!("Echo: {USER_MESSAGE}");
    anyhow::ensure!(text == expected, "answered {text:?}, expected {expected:?}");
    Ok(())
}

/// The text of an OpenAI chat stream: every `data:` event before `[DONE]` must be a
/// `chat.completion.chunk`, and `[DONE]` must come.
fn streamed_text(body: &[u8]) -> Result<String> {
    let body = std::str::from_utf8(body).context("the stream is not UTF-8")?;
    let mut text = String::new();
    let mut done = false;
    for data in body.lines().filter_map(|line| line.strip_prefix("data: ")) {
        if data == "[DONE]" {
            // What follows is the gateway's own trailer (run, step, cost), not the provider's.
            done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data)
            .with_context(|| format!("a stream event is not JSON: {data}"))?;
        anyhow::ensure!(
            chunk["object"] == "chat.completion.chunk",
            "not an OpenAI chat.completion.chunk: {chunk}"
        );
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(piece);
        }
    }
    anyhow::ensure!(done, "the stream has no data: [DONE]");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_order_of_all() {
        for (i, target) in Target::ALL.iter().enumerate() {
            assert_eq!(target.index(), i);
        }
    }

    #[test]
    fn an_untranslated_anthropic_answer_is_refused() {
        let anthropic = br#"{"type":"message","content":[{"type":"text","text":"Echo: Say hello in one word."}]}"#;
        let result = check_answer(Target::Direct, false, &HeaderMap::new(), anthropic);
        assert!(result.is_err());
        let openai =
            br#"{"object":"chat.completion","choices":[{"message":{"content":"Echo: Say hello in one word."}}]}"#;
        assert!(check_answer(Target::Direct, false, &HeaderMap::new(), openai).is_ok());
    }

    #[test]
    fn a_stream_is_read_chunk_by_chunk() {
        let stream = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\":\"Echo: Say \"}}]}\n\n\
                      data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\":\"hello in one word.\"}}]}\n\n\
                      data: [DONE]\n\n";
        assert_eq!(
            streamed_text(stream.as_bytes()).ok().as_deref(),
            Some("Echo: Say hello in one word.")
        );
        assert!(streamed_text(b"data: {\"object\":\"chat.completion.chunk\"}\n\n").is_err());
    }
}
