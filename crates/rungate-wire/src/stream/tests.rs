//! The tee on realistic provider streams, fed whole, byte by byte and in random splits.

use bytes::Bytes;

use super::*;

const OPENAI_USAGE: &str = include_str!("../../tests/golden/openai_usage.sse");
const OPENAI_USAGE_HIDDEN: &str = include_str!("../../tests/golden/openai_usage.hidden.sse");
const OPENAI_TOOLS: &str = include_str!("../../tests/golden/openai_tools.sse");
const ANTHROPIC_TOOLS: &str = include_str!("../../tests/golden/anthropic_tools.sse");
const RESPONSES_TOOLS: &str = include_str!("../../tests/golden/responses_tools.sse");
const GEMINI_TOOLS: &str = include_str!("../../tests/golden/gemini_tools.sse");

const ALL_DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Responses,
    Dialect::Gemini,
];

/// Everything observable about one run of the tap.
#[derive(Debug, PartialEq)]
struct Outcome {
    forwarded: Vec<u8>,
    usage: Option<Usage>,
    completed: bool,
    error: Option<String>,
    model: Option<String>,
}

impl Outcome {
    /// The answer completed: the upstream sent its end-of-answer event.
    fn completed(forwarded: impl Into<Vec<u8>>, model: &str, usage: Option<Usage>) -> Outcome {
        Outcome {
            forwarded: forwarded.into(),
            usage,
            completed: true,
            error: None,
            model: Some(model.to_owned()),
        }
    }

    /// The stream ended before the answer did, without an error.
    fn cut(forwarded: impl Into<Vec<u8>>, model: &str, usage: Option<Usage>) -> Outcome {
        Outcome {
            completed: false,
            ..Outcome::completed(forwarded, model, usage)
        }
    }

    /// The upstream sent an error event (`model` is `None` when it named none before).
    fn failed(
        forwarded: impl Into<Vec<u8>>,
        model: Option<&str>,
        usage: Option<Usage>,
        error: &str,
    ) -> Outcome {
        Outcome {
            forwarded: forwarded.into(),
            usage,
            completed: false,
            error: Some(error.to_owned()),
            model: model.map(str::to_owned),
        }
    }
}

fn run(dialect: Dialect, hide: bool, pieces: &[&[u8]]) -> Outcome {
    let mut tap = StreamTap::new(dialect, hide);
    let mut forwarded = Vec::new();
    for piece in pieces {
        forwarded.extend_from_slice(&tap.push(Bytes::copy_from_slice(piece)));
    }
    forwarded.extend_from_slice(&tap.finish());
    Outcome {
        forwarded,
        usage: tap.usage(),
        completed: tap.completed(),
        error: tap.upstream_error().map(str::to_owned),
        model: tap.response_model().map(str::to_owned),
    }
}

/// A small deterministic xorshift, so random splits are reproducible without a dependency.
fn random_cuts(len: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut cuts = Vec::new();
    let mut pos = 0;
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        pos += 1 + (state % 97) as usize;
        if pos >= len {
            return cuts;
        }
        cuts.push(pos);
    }
}

fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces
}

/// Runs `input` whole, byte by byte and in many random splits; all must agree with `expected`.
fn check(dialect: Dialect, hide: bool, input: &str, expected: &Outcome) {
    let bytes = input.as_bytes();
    assert_eq!(&run(dialect, hide, &[bytes]), expected, "fed whole");
    let every: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(
        &run(dialect, hide, &split_at(bytes, &every)),
        expected,
        "byte by byte"
    );
    for seed in 1..=40 {
        let cuts = random_cuts(bytes.len(), seed);
        assert_eq!(
            &run(dialect, hide, &split_at(bytes, &cuts)),
            expected,
            "seed {seed}"
        );
    }
}

/// Runs each `(hide, input)` through [`check`]: the stream must be forwarded unchanged and read
/// as `read_as` says.
fn check_unchanged(dialect: Dialect, cases: &[(bool, &str)], read_as: fn(&str) -> Outcome) {
    for &(hide, input) in cases {
        check(dialect, hide, input, &read_as(input));
    }
}

/// Pushes `whole` in random slices (from `seed`) and asserts each comes back as the very same
/// bytes, not a copy; returns the tap to be asked what it read.
fn push_zero_copy(dialect: Dialect, hide: bool, whole: &'static str, seed: u64) -> StreamTap {
    let mut tap = StreamTap::new(dialect, hide);
    let whole = Bytes::from_static(whole.as_bytes());
    let mut bounds = random_cuts(whole.len(), seed);
    bounds.push(whole.len());
    let starts = std::iter::once(0).chain(bounds.clone());
    for (start, end) in starts.zip(bounds) {
        let piece = whole.slice(start..end);
        let out = tap.push(piece.clone());
        assert_eq!((out.as_ptr(), out.len()), (piece.as_ptr(), piece.len()));
    }
    tap
}

/// The tools a stream proposed, fed whole.
fn proposed_tools(dialect: Dialect, input: impl Into<Bytes>) -> Vec<String> {
    let mut tap = StreamTap::new(dialect, false);
    tap.push(input.into());
    tap.proposed_tools().to_vec()
}

fn usage(input: u64, output: u64, cached: u64) -> Option<Usage> {
    Some(Usage {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
    })
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn openai_usage_outcome(forwarded: &str) -> Outcome {
    Outcome::completed(forwarded, "gpt-4o-2024-08-06", usage(1117, 12, 1024))
}

#[test]
fn openai_stream_passes_through_with_usage_read() {
    check_unchanged(
        Dialect::OpenAi,
        &[(false, OPENAI_USAGE)],
        openai_usage_outcome,
    );
}

#[test]
fn openai_hiding_removes_exactly_the_usage_only_chunk() {
    check(
        Dialect::OpenAi,
        true,
        OPENAI_USAGE,
        &openai_usage_outcome(OPENAI_USAGE_HIDDEN),
    );
}

#[test]
fn openai_hiding_works_with_crlf_line_endings() {
    let input = crlf(OPENAI_USAGE);
    check(
        Dialect::OpenAi,
        true,
        &input,
        &openai_usage_outcome(&crlf(OPENAI_USAGE_HIDDEN)),
    );
    check_unchanged(Dialect::OpenAi, &[(false, &input)], openai_usage_outcome);
}

#[test]
fn openai_hiding_forwards_a_stream_without_usage_chunk_unchanged() {
    let expected = Outcome::completed(OPENAI_TOOLS, "gpt-4.1-2025-04-14", None);
    check(Dialect::OpenAi, true, OPENAI_TOOLS, &expected);
    check(Dialect::OpenAi, false, OPENAI_TOOLS, &expected);
}

#[test]
fn openai_usage_in_a_chunk_with_choices_is_kept_even_when_hiding() {
    let input = "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
    let expected = Outcome::completed(input, "m", usage(3, 4, 0));
    check(Dialect::OpenAi, true, input, &expected);
}

fn anthropic_outcome(forwarded: &str) -> Outcome {
    Outcome::completed(forwarded, "claude-sonnet-4-20250514", usage(2472, 89, 1800))
}

#[test]
fn anthropic_stream_passes_through_with_usage_read() {
    // hide_usage_chunk means nothing for Anthropic: its usage events are part of the protocol.
    check_unchanged(
        Dialect::Anthropic,
        &[
            (false, ANTHROPIC_TOOLS),
            (true, ANTHROPIC_TOOLS),
            (false, &crlf(ANTHROPIC_TOOLS)),
        ],
        anthropic_outcome,
    );
}

#[test]
fn anthropic_stream_cut_midway_gives_partial_usage() {
    let cut = ANTHROPIC_TOOLS.find("event: content_block_stop").unwrap() + 30;
    let input = &ANTHROPIC_TOOLS[..cut];
    let expected = Outcome::cut(
        format!("{input}\n\n"),
        "claude-sonnet-4-20250514",
        usage(2472, 2, 1800),
    );
    check(Dialect::Anthropic, false, input, &expected);
}

#[test]
fn openai_stream_cut_midway_has_no_usage_and_is_not_completed() {
    let cut = OPENAI_USAGE.find("\"finish_reason\":\"stop\"").unwrap();
    let input = &OPENAI_USAGE[..cut];
    for hide in [false, true] {
        let expected = Outcome::cut(format!("{input}\n\n"), "gpt-4o-2024-08-06", None);
        check(Dialect::OpenAi, hide, input, &expected);
    }
}

#[test]
fn hiding_holds_an_incomplete_usage_chunk_until_eof_then_flushes_it() {
    let cut = OPENAI_USAGE.find("\"completion_tokens\":12").unwrap();
    let complete = &OPENAI_USAGE[..OPENAI_USAGE[..cut].rfind("\n\n").unwrap() + 2];
    let mut tap = StreamTap::new(Dialect::OpenAi, true);
    let pushed = tap.push(Bytes::copy_from_slice(&OPENAI_USAGE.as_bytes()[..cut]));
    assert_eq!(pushed, complete.as_bytes());
    let flushed = tap.finish();
    assert_eq!(
        flushed,
        format!("{}\n\n", &OPENAI_USAGE[complete.len()..cut]).as_bytes()
    );
    assert_eq!((tap.usage(), tap.completed()), (None, false));
}

#[test]
fn error_events_are_detected_in_both_dialects() {
    let openai = "data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"error\":{\"message\":\"The server had an error while processing your request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
    let expected = Outcome::failed(
        openai,
        Some("gpt-4o"),
        None,
        "The server had an error while processing your request. Sorry about that!",
    );
    check(Dialect::OpenAi, true, openai, &expected);

    let anthropic = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-opus-4-1\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    let expected = Outcome::failed(
        anthropic,
        Some("claude-opus-4-1"),
        usage(10, 1, 0),
        "Overloaded",
    );
    check(Dialect::Anthropic, false, anthropic, &expected);
}

#[test]
fn passing_through_returns_the_very_same_bytes() {
    let tap = push_zero_copy(Dialect::OpenAi, false, OPENAI_USAGE, 3);
    assert_eq!(tap.usage(), usage(1117, 12, 1024));
}

#[test]
fn hiding_a_chunk_without_usage_returns_a_zero_copy_slice() {
    let mut tap = StreamTap::new(Dialect::OpenAi, true);
    let chunk = Bytes::from_static(OPENAI_TOOLS.as_bytes());
    let out = tap.push(chunk.clone());
    assert_eq!((out.as_ptr(), out.len()), (chunk.as_ptr(), chunk.len()));
}

#[test]
fn azure_prompt_filter_chunk_is_neither_hidden_nor_taken_for_the_model() {
    let input = concat!(
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"index\":0}],\"model\":\"gpt-4o-2024-11-20\",\"usage\":null}\n\n",
        "data: {\"choices\":[],\"model\":\"gpt-4o-2024-11-20\",\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n",
        "data: [DONE]\n\n",
    );
    let cut = input.find("data: {\"choices\":[],\"model").unwrap();
    let expected = Outcome::completed(
        format!("{}data: [DONE]\n\n", &input[..cut]),
        "gpt-4o-2024-11-20",
        usage(9, 1, 0),
    );
    check(Dialect::OpenAi, true, input, &expected);
}

#[test]
fn an_unterminated_final_event_is_read_and_closed() {
    let input = "data: {\"model\":\"m\",\"choices\":[]}\n\ndata: [DONE]";
    let expected = Outcome::completed(format!("{input}\n\n"), "m", None);
    check(Dialect::OpenAi, true, input, &expected);
    check(Dialect::OpenAi, false, input, &expected);
}

#[test]
fn garbage_is_forwarded_without_panic() {
    let mut noise = Vec::new();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push((state >> 24) as u8);
    }
    noise.extend_from_slice(
        b"\n\ndata: {\"usage\": {\"prompt_tokens\": \n\n\r\r\r\n\ndata: [DONE]\n\n",
    );
    for dialect in ALL_DIALECTS {
        let mut tap = StreamTap::new(dialect, false);
        for piece in split_at(&noise, &random_cuts(noise.len(), 7)) {
            assert_eq!(tap.push(Bytes::copy_from_slice(piece)), piece);
        }
        tap.finish();
        assert_eq!(tap.completed(), dialect == Dialect::OpenAi);
    }
}

#[test]
fn an_oversized_event_is_forwarded_and_later_events_still_read() {
    let mut input = b"data: ".to_vec();
    input.resize(MAX_EVENT_BYTES + 10, b'x');
    input.extend_from_slice(b"\n\n");
    input.extend_from_slice(OPENAI_USAGE.as_bytes());
    let mut expected = input.clone();
    expected.truncate(MAX_EVENT_BYTES + 12);
    expected.extend_from_slice(OPENAI_USAGE_HIDDEN.as_bytes());
    let pieces = split_at(&input, &[1000, MAX_EVENT_BYTES - 5, MAX_EVENT_BYTES + 11]);
    let outcome = run(Dialect::OpenAi, true, &pieces);
    assert!(outcome.forwarded == expected, "forwarded bytes differ");
    assert_eq!(outcome.usage, usage(1117, 12, 1024));
}

#[test]
fn rungate_trailer_event_is_framed_as_the_spec_says() {
    let trailer = RungateTrailer {
        run_id: "run_42".to_owned(),
        step_id: "stp_1".to_owned(),
        provider: "openai".to_owned(),
        model: "gpt-4o".to_owned(),
        cost_usd: 0.0125,
        tokens: TrailerTokens {
            input: 1117,
            output: 12,
        },
    };
    assert_eq!(
        rungate_event(&trailer),
        "event: rungate\ndata: {\"run_id\":\"run_42\",\"step_id\":\"stp_1\",\"provider\":\"openai\",\"model\":\"gpt-4o\",\"cost_usd\":0.0125,\"tokens\":{\"input\":1117,\"output\":12}}\n\n"
    );
}

#[test]
fn stream_error_events_speak_the_clients_dialect() {
    assert_eq!(
        stream_error_event(Dialect::OpenAi, "provider_error", "upstream \"closed\""),
        "data: {\"error\":{\"message\":\"upstream \\\"closed\\\"\",\"type\":\"provider_error\",\"code\":\"provider_error\"}}\n\n"
    );
    assert_eq!(
        stream_error_event(Dialect::Anthropic, "provider_timeout", "timed out"),
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"timed out\",\"code\":\"provider_timeout\"}}\n\n"
    );
    assert_eq!(
        stream_error_event(Dialect::Responses, "provider_error", "boom"),
        "event: error\ndata: {\"type\":\"error\",\"code\":\"provider_error\",\"message\":\"boom\",\"param\":null}\n\n"
    );
    let info = r#""details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"#;
    assert_eq!(
        stream_error_event(Dialect::Gemini, "provider_error", "boom"),
        format!(
            "data: {{\"error\":{{\"code\":500,\"message\":\"boom\",\"status\":\"INTERNAL\",{info}\"provider_error\",\"domain\":\"rungate\"}}]}}}}\n\n"
        )
    );
    assert_eq!(
        stream_error_event(Dialect::Gemini, "provider_timeout", "timed out"),
        format!(
            "data: {{\"error\":{{\"code\":504,\"message\":\"timed out\",\"status\":\"DEADLINE_EXCEEDED\",{info}\"provider_timeout\",\"domain\":\"rungate\"}}]}}}}\n\n"
        )
    );
}

#[test]
fn the_tap_reads_its_own_error_event() {
    for dialect in ALL_DIALECTS {
        let event = stream_error_event(dialect, "provider_error", "boom");
        let outcome = run(dialect, false, &[&event]);
        assert_eq!(outcome.error.as_deref(), Some("boom"), "{dialect:?}");
    }
}

#[test]
fn tool_calls_proposed_in_a_stream_are_named() {
    let openai = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"name\\\":1}\"}}]}}]}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(proposed_tools(Dialect::OpenAi, openai), ["get_weather"]);
    let anthropic = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"search\",\"input\":{}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    assert_eq!(proposed_tools(Dialect::Anthropic, anthropic), ["search"]);
}

// ---- OpenAI Responses ----

fn responses_outcome(forwarded: &str) -> Outcome {
    Outcome::completed(forwarded, "gpt-4.1-2025-04-14", usage(1337, 41, 1024))
}

/// The same stream without `event:` lines, as some Responses-compatible servers send it.
fn without_event_lines(sse: &str) -> String {
    sse.lines()
        .filter(|line| !line.starts_with("event:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn responses_stream_passes_through_with_usage_model_and_completion_read() {
    // hide_usage_chunk means nothing for Responses: usage is part of `response.completed`.
    check_unchanged(
        Dialect::Responses,
        &[
            (false, RESPONSES_TOOLS),
            (true, RESPONSES_TOOLS),
            (false, &crlf(RESPONSES_TOOLS)),
            (false, &without_event_lines(RESPONSES_TOOLS)),
        ],
        responses_outcome,
    );
}

#[test]
fn responses_stream_names_the_function_it_calls() {
    for input in [
        RESPONSES_TOOLS.to_owned(),
        without_event_lines(RESPONSES_TOOLS),
    ] {
        assert_eq!(proposed_tools(Dialect::Responses, input), ["get_weather"]);
    }
}

#[test]
fn responses_stream_cut_before_its_final_event_has_no_usage_and_is_not_completed() {
    let cut = RESPONSES_TOOLS.find("event: response.completed").unwrap();
    let input = &RESPONSES_TOOLS[..cut];
    let expected = Outcome::cut(input, "gpt-4.1-2025-04-14", None);
    check(Dialect::Responses, false, input, &expected);
}

#[test]
fn responses_incomplete_is_final_and_carries_usage() {
    let input = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"o4-mini-2025-04-16\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"sequence_number\":5,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"model\":\"o4-mini-2025-04-16\",\"output\":[],\"usage\":{\"input_tokens\":20,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":300,\"output_tokens_details\":{\"reasoning_tokens\":300},\"total_tokens\":320}}}\n\n",
    );
    let expected = Outcome::completed(input, "o4-mini-2025-04-16", usage(20, 300, 0));
    check(Dialect::Responses, false, input, &expected);
}

#[test]
fn responses_failures_are_upstream_errors() {
    let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_123\",\"object\":\"response\",\"created_at\":1740855869,\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model failed to generate a response.\"},\"incomplete_details\":null,\"model\":\"gpt-4o-mini-2024-07-18\",\"output\":[],\"usage\":null,\"metadata\":{}}}\n\n";
    let expected = Outcome::failed(
        failed,
        Some("gpt-4o-mini-2024-07-18"),
        None,
        "The model failed to generate a response.",
    );
    check(Dialect::Responses, false, failed, &expected);

    let error = "event: error\ndata: {\"type\":\"error\",\"code\":\"ERR_SOMETHING\",\"message\":\"Something went wrong\",\"param\":null,\"sequence_number\":1}\n\n";
    let expected = Outcome::failed(error, None, None, "Something went wrong");
    check(Dialect::Responses, false, error, &expected);
    let bare = without_event_lines(error);
    let outcome = run(Dialect::Responses, false, &[bare.as_bytes()]);
    assert_eq!(outcome.error.as_deref(), Some("Something went wrong"));
}

#[test]
fn responses_final_event_larger_than_the_usual_bound_is_still_read() {
    let text = "x".repeat(MAX_EVENT_BYTES * 2);
    let input = format!(
        "event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"model\":\"gpt-5\",\"output\":[{{\"type\":\"message\",\"content\":[{{\"type\":\"output_text\",\"text\":\"{text}\"}}]}}],\"usage\":{{\"input_tokens\":5,\"output_tokens\":600000}}}}}}\n\n"
    );
    let pieces = split_at(input.as_bytes(), &random_cuts(input.len(), 11)[..3]);
    let outcome = run(Dialect::Responses, false, &pieces);
    assert_eq!(outcome.usage, usage(5, 600_000, 0));
    assert!(outcome.completed);
}

// ---- Gemini ----

fn gemini_outcome(forwarded: &str) -> Outcome {
    // Output is candidates plus thoughts; the prompt count already includes cached content.
    Outcome::completed(forwarded, "gemini-2.5-flash", usage(118, 36 + 44, 64))
}

#[test]
fn gemini_stream_passes_through_with_usage_model_and_completion_read() {
    check_unchanged(
        Dialect::Gemini,
        &[
            (false, GEMINI_TOOLS),
            (true, GEMINI_TOOLS),
            (false, &GEMINI_TOOLS.replace("\r\n", "\n")),
        ],
        gemini_outcome,
    );
    assert_eq!(
        proposed_tools(Dialect::Gemini, GEMINI_TOOLS),
        ["schedule_meeting"]
    );
}

#[test]
fn gemini_stream_cut_midway_keeps_the_latest_cumulative_usage() {
    let cut = GEMINI_TOOLS
        .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\"")
        .unwrap();
    let input = &GEMINI_TOOLS[..cut];
    let expected = Outcome::cut(input, "gemini-2.5-flash", usage(118, 9 + 44, 0));
    check(Dialect::Gemini, false, input, &expected);
}

#[test]
fn gemini_error_chunks_and_blocked_prompts_are_read() {
    let error = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}],\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.5-pro\"}\r\n\r\ndata: {\"error\": {\"code\": 503,\"message\": \"The model is overloaded. Please try again later.\",\"status\": \"UNAVAILABLE\"}}\r\n\r\n";
    let expected = Outcome::failed(
        error,
        Some("gemini-2.5-pro"),
        None,
        "The model is overloaded. Please try again later.",
    );
    check(Dialect::Gemini, false, error, &expected);

    let blocked = "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\",\"safetyRatings\": [{\"category\": \"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\": \"HIGH\"}]},\"usageMetadata\": {\"promptTokenCount\": 12,\"totalTokenCount\": 12},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n";
    let expected = Outcome::completed(blocked, "gemini-2.5-flash", usage(12, 0, 0));
    check(Dialect::Gemini, false, blocked, &expected);
}

#[test]
fn responses_and_gemini_streams_pass_through_zero_copy() {
    for (dialect, input) in [
        (Dialect::Responses, RESPONSES_TOOLS),
        (Dialect::Gemini, GEMINI_TOOLS),
    ] {
        let tap = push_zero_copy(dialect, true, input, 5);
        assert!(tap.completed(), "{dialect:?}");
    }
}
