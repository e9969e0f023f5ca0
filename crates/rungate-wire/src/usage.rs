//! Token usage as the providers report it, normalised to one [`Usage`] that pricing can read.
//!
//! The provider's own numbers are the only source of truth for what a call cost, so this module
//! reads them exactly (an explicit zero stays zero) and never estimates. Only the `usage` member
//! of an answer is deserialized; the rest of the body is skipped without being built.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Dialect;
use crate::lenient::Count;

/// Tokens of one model call. `input_tokens` includes `cached_input_tokens` (and, for Anthropic,
/// cache writes), so `cached_input_tokens` is the part of the input to price at the cached rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
}

impl Usage {
    /// Input plus output tokens (cached input is part of input).
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Usage of a non-streaming JSON answer; `None` when the body has no usage (`usage`, Gemini's
/// `usageMetadata`).
pub fn usage_from_body(dialect: Dialect, body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, default)]
        usage: Option<&'a RawValue>,
        #[serde(borrow, default, rename = "usageMetadata")]
        usage_metadata: Option<&'a RawValue>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    match dialect {
        Dialect::OpenAi => openai_usage(answer.usage?),
        Dialect::Anthropic => AnthropicUsage::read(answer.usage?).map(AnthropicUsage::total),
        Dialect::Responses => responses_usage(answer.usage?),
        Dialect::Gemini => GeminiUsage::read(answer.usage_metadata?).map(GeminiUsage::total),
    }
}

/// A usage struct read from a JSON object; `None` for anything else (a derived struct would also
/// accept an array, by position).
fn from_object<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    if raw.get().starts_with('{') {
        serde_json::from_str(raw.get()).ok()
    } else {
        None
    }
}

/// OpenAI's `usage` object: `prompt_tokens` (cached included), `completion_tokens`,
/// `prompt_tokens_details.cached_tokens`. `None` when it is not an object.
pub(crate) fn openai_usage(raw: &RawValue) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Wire<'a> {
        #[serde(default)]
        prompt_tokens: Count,
        #[serde(default)]
        completion_tokens: Count,
        #[serde(borrow, default)]
        prompt_tokens_details: Option<&'a RawValue>,
    }
    let wire: Wire = from_object(raw)?;
    Some(openai_family_usage(
        wire.prompt_tokens,
        wire.completion_tokens,
        wire.prompt_tokens_details,
    ))
}

/// The Responses API's `usage` object: `input_tokens` (cached included), `output_tokens`
/// (reasoning included), `input_tokens_details.cached_tokens`. `None` when it is not an object.
pub(crate) fn responses_usage(raw: &RawValue) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Wire<'a> {
        #[serde(default)]
        input_tokens: Count,
        #[serde(default)]
        output_tokens: Count,
        #[serde(borrow, default)]
        input_tokens_details: Option<&'a RawValue>,
    }
    let wire: Wire = from_object(raw)?;
    Some(openai_family_usage(
        wire.input_tokens,
        wire.output_tokens,
        wire.input_tokens_details,
    ))
}

/// Both OpenAI APIs count the same way under different names: input with the cached part in
/// it, output, and the cached part in a details object (`cached_tokens`).
fn openai_family_usage(input: Count, output: Count, input_details: Option<&RawValue>) -> Usage {
    #[derive(Deserialize)]
    struct Details {
        #[serde(default)]
        cached_tokens: Count,
    }
    let cached = input_details
        .and_then(|d| serde_json::from_str::<Details>(d.get()).ok())
        .and_then(|d| d.cached_tokens.0);
    Usage {
        input_tokens: input.0.unwrap_or(0),
        output_tokens: output.0.unwrap_or(0),
        cached_input_tokens: cached.unwrap_or(0),
    }
}

/// Gemini's `usageMetadata`, fields kept apart so that a stream's cumulative reports can be
/// merged (some chunks carry only some counts, Vertex's early chunks none at all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GeminiUsage {
    #[serde(default)]
    prompt_token_count: Count,
    #[serde(default)]
    cached_content_token_count: Count,
    #[serde(default)]
    tool_use_prompt_token_count: Count,
    #[serde(default)]
    candidates_token_count: Count,
    #[serde(default)]
    thoughts_token_count: Count,
}

impl GeminiUsage {
    /// `None` when the value is not an object.
    pub(crate) fn read(raw: &RawValue) -> Option<Self> {
        from_object(raw)
    }

    /// Folds a later report into this one: every count is cumulative, so the latest one given
    /// wins, and a count a later chunk leaves out keeps its earlier value.
    pub(crate) fn merge(&mut self, later: GeminiUsage) {
        fn latest(earlier: &mut Count, later: Count) {
            if later.0.is_some() {
                *earlier = later;
            }
        }
        latest(&mut self.prompt_token_count, later.prompt_token_count);
        latest(
            &mut self.cached_content_token_count,
            later.cached_content_token_count,
        );
        latest(
            &mut self.tool_use_prompt_token_count,
            later.tool_use_prompt_token_count,
        );
        latest(
            &mut self.candidates_token_count,
            later.candidates_token_count,
        );
        latest(&mut self.thoughts_token_count, later.thoughts_token_count);
    }

    /// Input is the prompt (cached content included) plus the tool-use prompt (e.g. search
    /// results fed back to the model), which Gemini counts apart; output is the candidates plus
    /// the thoughts, which are billed as output.
    pub(crate) fn total(self) -> Usage {
        let count = |c: Count| c.0.unwrap_or(0);
        Usage {
            input_tokens: count(self.prompt_token_count)
                .saturating_add(count(self.tool_use_prompt_token_count)),
            output_tokens: count(self.candidates_token_count)
                .saturating_add(count(self.thoughts_token_count)),
            cached_input_tokens: count(self.cached_content_token_count),
        }
    }
}

/// Anthropic's `usage` object, fields kept apart so a stream can merge `message_start` and
/// `message_delta` reports. Absent fields are `None`, so a later report never erases an earlier
/// one by omission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Count,
    #[serde(default)]
    output_tokens: Count,
    #[serde(default)]
    cache_creation_input_tokens: Count,
    #[serde(default)]
    cache_read_input_tokens: Count,
}

impl AnthropicUsage {
    /// `None` when the value is not an object.
    pub(crate) fn read(raw: &RawValue) -> Option<Self> {
        from_object(raw)
    }

    /// Folds a later report into this one: output tokens are cumulative, so the latest wins;
    /// input counts only ever grow (a `message_delta` may repeat them, e.g. after server tool
    /// use), so the larger one wins.
    pub(crate) fn merge(&mut self, later: AnthropicUsage) {
        fn larger(a: Count, b: Count) -> Count {
            match (a.0, b.0) {
                (Some(x), Some(y)) => Count(Some(x.max(y))),
                (x, y) => Count(x.or(y)),
            }
        }
        if later.output_tokens.0.is_some() {
            self.output_tokens = later.output_tokens;
        }
        self.input_tokens = larger(self.input_tokens, later.input_tokens);
        self.cache_creation_input_tokens = larger(
            self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        self.cache_read_input_tokens =
            larger(self.cache_read_input_tokens, later.cache_read_input_tokens);
    }

    /// Input is uncached + cache writes + cache reads; cached is the cache reads.
    pub(crate) fn total(self) -> Usage {
        let read = self.cache_read_input_tokens.0.unwrap_or(0);
        Usage {
            input_tokens: self
                .input_tokens
                .0
                .unwrap_or(0)
                .saturating_add(self.cache_creation_input_tokens.0.unwrap_or(0))
                .saturating_add(read),
            output_tokens: self.output_tokens.0.unwrap_or(0),
            cached_input_tokens: read,
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn check(dialect: Dialect, body: &str, expected: Option<Usage>) {
        assert_eq!(
            usage_from_body(dialect, body.as_bytes()),
            expected,
            "{body}"
        );
    }

    fn usage(input: u64, output: u64, cached: u64) -> Option<Usage> {
        Some(Usage {
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cached,
        })
    }

    #[test]
    fn openai_answer_usage_counts_cached_inside_prompt_tokens() {
        let body = r#"{"id":"chatcmpl-abc","object":"chat.completion","created":1741569952,
            "model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant",
            "content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},
            "logprobs":null,"finish_reason":"stop"}],
            "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
            "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,
            "accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
            "service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#;
        check(Dialect::OpenAi, body, usage(2006, 300, 1920));
    }

    #[test]
    fn openai_usage_variants() {
        check(
            Dialect::OpenAi,
            r#"{"usage":{"prompt_tokens":5,"completion_tokens":0}}"#,
            usage(5, 0, 0),
        );
        check(
            Dialect::OpenAi,
            r#"{"usage":{"prompt_tokens":5,"prompt_tokens_details":null}}"#,
            usage(5, 0, 0),
        );
        check(Dialect::OpenAi, r#"{"choices":[]}"#, None);
        check(Dialect::OpenAi, r#"{"usage":null}"#, None);
        check(Dialect::OpenAi, r#"{"usage":"lots"}"#, None);
        check(Dialect::OpenAi, r#"not json"#, None);
        check(
            Dialect::OpenAi,
            r#"{"usage":{"prompt_tokens":1.0e1,"completion_tokens":-3}}"#,
            usage(10, 0, 0),
        );
    }

    #[test]
    fn anthropic_answer_usage_adds_cache_reads_and_writes_to_input() {
        let body = r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant",
            "model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi!"}],
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":12,"cache_creation_input_tokens":100,
            "cache_read_input_tokens":2000,"output_tokens":6,"service_tier":"standard"}}"#;
        check(Dialect::Anthropic, body, usage(2112, 6, 2000));
        check(
            Dialect::Anthropic,
            r#"{"usage":{"input_tokens":0,"output_tokens":0}}"#,
            usage(0, 0, 0),
        );
        check(Dialect::Anthropic, r#"{"type":"message"}"#, None);
    }

    #[test]
    fn responses_answer_usage_counts_cached_inside_input_tokens() {
        let body = r#"{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
            "object":"response","created_at":1741476542,"status":"completed","error":null,
            "incomplete_details":null,"instructions":null,"max_output_tokens":null,
            "model":"gpt-4.1-2025-04-14","output":[{"type":"message",
            "id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed",
            "role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove...",
            "annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,
            "reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,
            "text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,
            "truncation":"disabled","usage":{"input_tokens":2036,"input_tokens_details":
            {"cached_tokens":1920},"output_tokens":87,"output_tokens_details":
            {"reasoning_tokens":64},"total_tokens":2123},"user":null,"metadata":{}}"#;
        check(Dialect::Responses, body, usage(2036, 87, 1920));
        check(
            Dialect::Responses,
            r#"{"usage":{"input_tokens":5,"output_tokens":0,"input_tokens_details":null}}"#,
            usage(5, 0, 0),
        );
        check(
            Dialect::Responses,
            r#"{"status":"queued","usage":null}"#,
            None,
        );
        // Chat Completions field names mean nothing in a Responses answer.
        check(
            Dialect::Responses,
            r#"{"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
            usage(0, 0, 0),
        );
    }

    #[test]
    fn gemini_answer_usage_bills_thoughts_and_tool_prompts() {
        let body = r#"{"candidates":[{"content":{"parts":[{"text":"AI learns patterns from data."}],
            "role":"model"},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":316,
            "totalTokenCount":1345,"promptTokensDetails":[{"modality":"TEXT","tokenCount":8}],
            "thoughtsTokenCount":1021},"modelVersion":"gemini-2.5-flash",
            "responseId":"7D9oaN2pDZ6-nsEPgt7o-QU"}"#;
        check(Dialect::Gemini, body, usage(8, 316 + 1021, 0));
        let cached = r#"{"candidates":[],"usageMetadata":{"promptTokenCount":2500,
            "cachedContentTokenCount":2048,"toolUsePromptTokenCount":300,
            "candidatesTokenCount":12,"totalTokenCount":2812}}"#;
        check(Dialect::Gemini, cached, usage(2800, 12, 2048));
        // Gemini's usage lives in `usageMetadata`; a `usage` member is not it.
        check(Dialect::Gemini, r#"{"usage":{"prompt_tokens":5}}"#, None);
        check(Dialect::Gemini, r#"{"usageMetadata":[1]}"#, None);
    }

    #[test]
    fn gemini_merge_keeps_the_latest_of_each_cumulative_count() {
        let read =
            |s: &str| GeminiUsage::read(&RawValue::from_string(s.to_owned()).unwrap()).unwrap();
        let mut tally = read(r#"{"promptTokenCount":10,"totalTokenCount":10}"#);
        tally.merge(read(r#"{"trafficType":"ON_DEMAND"}"#));
        assert_eq!(tally.total(), usage(10, 0, 0).unwrap());
        tally.merge(read(r#"{"promptTokenCount":10,"candidatesTokenCount":9}"#));
        tally.merge(read(
            r#"{"candidatesTokenCount":20,"thoughtsTokenCount":5}"#,
        ));
        assert_eq!(tally.total(), usage(10, 25, 0).unwrap());
    }

    #[test]
    fn anthropic_merge_keeps_latest_output_and_largest_input() {
        let read =
            |s: &str| AnthropicUsage::read(&RawValue::from_string(s.to_owned()).unwrap()).unwrap();
        let mut tally =
            read(r#"{"input_tokens":25,"cache_read_input_tokens":7,"output_tokens":1}"#);
        tally.merge(read(r#"{"output_tokens":15}"#));
        assert_eq!(tally.total(), usage(32, 15, 7).unwrap());
        tally.merge(read(r#"{"input_tokens":0,"output_tokens":20}"#));
        assert_eq!(tally.total(), usage(32, 20, 7).unwrap());
        assert_eq!(usage(3, 4, 1).unwrap().total(), 7);
    }
}
