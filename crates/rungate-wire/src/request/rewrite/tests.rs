//! Request rewriting, table-driven over every dialect: what changes, and that nothing else does.

use bytes::Bytes;

use super::*;
use crate::request::{RequestFacts, inspect_request};

fn rewrite(dialect: Dialect, body: &str, rw: &Rewrite<'_>) -> String {
    let out = rewrite_request(dialect, &Bytes::copy_from_slice(body.as_bytes()), rw).unwrap();
    String::from_utf8(out.to_vec()).unwrap()
}

fn check_rewrite(dialect: Dialect, body: &str, rw: Rewrite<'_>, expected: &str) {
    assert_eq!(rewrite(dialect, body, &rw), expected, "{rw:?} on {body}");
}

const OPENAI_BODY: &str = r#"{"model":"gpt-4o","rungate":{"run_id":"r1"},"messages":[{"role":"user","content":"hi","x-extra":true}],"temperature":1.0,"top_p":0.950,"n":1,"seed":-12,"logit_bias":{"50256":-100},"x_unknown":{"a":[1, 2.50, 1e3, 12345678901234567890123]},"stream":true}"#;

#[test]
fn noop_and_unchanged_rewrites_return_the_original_bytes() {
    let body = Bytes::from_static(OPENAI_BODY.as_bytes());
    let same = |dialect, rw: Rewrite<'_>| {
        let out = rewrite_request(dialect, &body, &rw).unwrap();
        assert_eq!(
            (out.as_ptr(), out.len()),
            (body.as_ptr(), body.len()),
            "{rw:?}"
        );
    };
    same(Dialect::OpenAi, Rewrite::default());
    same(
        Dialect::OpenAi,
        Rewrite {
            model: Some("gpt-4o"),
            ..Rewrite::default()
        },
    );
    let no_rungate = Bytes::from_static(br#"{"model":"m", "messages":[]}"#);
    let out = rewrite_request(
        Dialect::Anthropic,
        &no_rungate,
        &Rewrite {
            strip_rungate: true,
            ..Rewrite::default()
        },
    )
    .unwrap();
    assert_eq!(out.as_ptr(), no_rungate.as_ptr());
    let asks = Bytes::from_static(br#"{"model":"m","stream_options":{"include_usage":true}}"#);
    let out = rewrite_request(
        Dialect::OpenAi,
        &asks,
        &Rewrite {
            inject_include_usage: true,
            ..Rewrite::default()
        },
    )
    .unwrap();
    assert_eq!(out.as_ptr(), asks.as_ptr());
    assert!(Rewrite::default().is_noop());
    assert!(
        !Rewrite {
            max_output_tokens: Some(1),
            ..Rewrite::default()
        }
        .is_noop()
    );
}

#[test]
fn rewrites_preserve_order_unknown_fields_and_numbers() {
    let strip = Rewrite {
        strip_rungate: true,
        ..Rewrite::default()
    };
    check_rewrite(
        Dialect::OpenAi,
        OPENAI_BODY,
        strip.clone(),
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi","x-extra":true}],"temperature":1.0,"top_p":0.950,"n":1,"seed":-12,"logit_bias":{"50256":-100},"x_unknown":{"a":[1, 2.50, 1e3, 12345678901234567890123]},"stream":true}"#,
    );
    let all = Rewrite {
        strip_rungate: true,
        inject_include_usage: true,
        model: Some("gpt-4o-mini"),
        max_output_tokens: Some(100),
    };
    check_rewrite(
        Dialect::OpenAi,
        OPENAI_BODY,
        all,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","x-extra":true}],"temperature":1.0,"top_p":0.950,"n":1,"seed":-12,"logit_bias":{"50256":-100},"x_unknown":{"a":[1, 2.50, 1e3, 12345678901234567890123]},"stream":true,"max_completion_tokens":100,"stream_options":{"include_usage":true}}"#,
    );
    // Top-level separators are re-emitted compactly; nested text is verbatim; escaped keys re-escaped.
    check_rewrite(
        Dialect::Anthropic,
        "{\n  \"model\" : \"claude\",\n  \"rungate\": {},\n  \"messages\": [ {\"role\": \"user\"} ],\n  \"k\\u00e9y\\n\": 1\n}\n",
        strip,
        "{\"model\":\"claude\",\"messages\":[ {\"role\": \"user\"} ],\"k\u{e9}y\\n\":1}",
    );
}

#[test]
fn include_usage_injection_keeps_other_stream_options() {
    let inject = || Rewrite {
        inject_include_usage: true,
        ..Rewrite::default()
    };
    let cases = [
        (
            r#"{"model":"m","stream":true}"#,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
        ),
        (
            r#"{"stream_options":{"include_obfuscation":false},"model":"m"}"#,
            r#"{"stream_options":{"include_obfuscation":false,"include_usage":true},"model":"m"}"#,
        ),
        (
            r#"{"stream_options":{"include_usage":false,"x":1},"model":"m"}"#,
            r#"{"stream_options":{"include_usage":true,"x":1},"model":"m"}"#,
        ),
        (
            r#"{"stream_options":null,"model":"m"}"#,
            r#"{"stream_options":{"include_usage":true},"model":"m"}"#,
        ),
    ];
    for (body, expected) in cases {
        check_rewrite(Dialect::OpenAi, body, inject(), expected);
    }
    // Anthropic streams always carry usage: nothing to inject.
    let body = r#"{"model":"claude","stream":true}"#;
    check_rewrite(Dialect::Anthropic, body, inject(), body);
}

#[test]
fn max_output_tokens_sets_the_field_the_request_uses() {
    let clamp = || Rewrite {
        max_output_tokens: Some(50),
        ..Rewrite::default()
    };
    let cases = [
        (
            Dialect::OpenAi,
            r#"{"max_completion_tokens":4096,"model":"o3"}"#,
            r#"{"max_completion_tokens":50,"model":"o3"}"#,
        ),
        (
            Dialect::OpenAi,
            r#"{"max_tokens":4096,"model":"gpt-4o"}"#,
            r#"{"max_tokens":50,"model":"gpt-4o"}"#,
        ),
        (
            Dialect::OpenAi,
            r#"{"max_tokens":9,"max_completion_tokens":4096}"#,
            r#"{"max_tokens":50,"max_completion_tokens":50}"#,
        ),
        (
            Dialect::OpenAi,
            r#"{"max_completion_tokens":null,"max_tokens":90}"#,
            r#"{"max_completion_tokens":null,"max_tokens":50}"#,
        ),
        (
            Dialect::OpenAi,
            r#"{"model":"gpt-5"}"#,
            r#"{"model":"gpt-5","max_completion_tokens":50}"#,
        ),
        (
            Dialect::Anthropic,
            r#"{"model":"claude","max_tokens":8192,"max_completion_tokens":7}"#,
            r#"{"model":"claude","max_tokens":50,"max_completion_tokens":7}"#,
        ),
        (
            Dialect::Anthropic,
            r#"{"model":"claude"}"#,
            r#"{"model":"claude","max_tokens":50}"#,
        ),
    ];
    for (dialect, body, expected) in cases {
        check_rewrite(dialect, body, clamp(), expected);
    }
}

#[test]
fn rewriting_a_malformed_body_is_an_error() {
    let rw = Rewrite {
        strip_rungate: true,
        ..Rewrite::default()
    };
    let err = rewrite_request(Dialect::OpenAi, &Bytes::from_static(b"{\"model\":"), &rw);
    assert!(
        matches!(err, Err(WireError::MalformedJson { line: 1, .. })),
        "{err:?}"
    );
    let err = rewrite_request(Dialect::OpenAi, &Bytes::from_static(b"[]"), &rw);
    assert!(
        matches!(err, Err(WireError::MalformedJson { .. })),
        "{err:?}"
    );
}

#[test]
fn a_rewritten_body_still_inspects_the_same() {
    let body = Bytes::from_static(OPENAI_BODY.as_bytes());
    let rw = Rewrite {
        strip_rungate: true,
        inject_include_usage: true,
        ..Rewrite::default()
    };
    let before = inspect_request(Dialect::OpenAi, &body).unwrap();
    let after = inspect_request(
        Dialect::OpenAi,
        &rewrite_request(Dialect::OpenAi, &body, &rw).unwrap(),
    )
    .unwrap();
    let expected = RequestFacts {
        include_usage: true,
        body_run_id: None,
        has_rungate_field: false,
        ..before
    };
    assert_eq!(after, expected);
}

#[test]
fn responses_rewrites_model_and_max_output_tokens_and_never_injects_usage() {
    let body = r#"{"model":"gpt-4.1","rungate":{"run_id":"r1"},"input":"hi","max_output_tokens":4096,"temperature":1.0,"stream":true}"#;
    check_rewrite(
        Dialect::Responses,
        body,
        Rewrite {
            strip_rungate: true,
            inject_include_usage: true,
            model: Some("gpt-4.1-mini"),
            max_output_tokens: Some(100),
        },
        r#"{"model":"gpt-4.1-mini","input":"hi","max_output_tokens":100,"temperature":1.0,"stream":true}"#,
    );
    check_rewrite(
        Dialect::Responses,
        r#"{"model":"o3","input":"hi","max_tokens":9}"#,
        Rewrite {
            max_output_tokens: Some(50),
            ..Rewrite::default()
        },
        r#"{"model":"o3","input":"hi","max_tokens":9,"max_output_tokens":50}"#,
    );
    let streaming = Bytes::from_static(br#"{"model":"gpt-5","input":"hi","stream":true}"#);
    let inject = Rewrite {
        inject_include_usage: true,
        ..Rewrite::default()
    };
    let out = rewrite_request(Dialect::Responses, &streaming, &inject).unwrap();
    assert_eq!(out.as_ptr(), streaming.as_ptr());
}

#[test]
fn gemini_clamp_writes_into_generation_config_and_keeps_its_other_members() {
    let clamp = || Rewrite {
        max_output_tokens: Some(50),
        ..Rewrite::default()
    };
    let cases = [
        (
            r#"{"contents":[],"generationConfig":{"temperature": 0.20, "maxOutputTokens": 8192, "stopSequences": ["\n\n"]},"x":1}"#,
            r#"{"contents":[],"generationConfig":{"temperature":0.20,"maxOutputTokens":50,"stopSequences":["\n\n"]},"x":1}"#,
        ),
        (
            r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#,
            r#"{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":50}}"#,
        ),
        (
            r#"{"contents":[],"generationConfig":{"temperature":1}}"#,
            r#"{"contents":[],"generationConfig":{"temperature":1,"maxOutputTokens":50}}"#,
        ),
        (
            r#"{"generation_config":{"max_output_tokens":900},"contents":[]}"#,
            r#"{"generation_config":{"max_output_tokens":50},"contents":[]}"#,
        ),
        (
            r#"{"contents":[],"generationConfig":null}"#,
            r#"{"contents":[],"generationConfig":{"maxOutputTokens":50}}"#,
        ),
    ];
    for (body, expected) in cases {
        check_rewrite(Dialect::Gemini, body, clamp(), expected);
        let limit = inspect_request(Dialect::Gemini, expected.as_bytes()).unwrap();
        assert_eq!(limit.max_output_tokens, Some(50), "{expected}");
    }
}

#[test]
fn gemini_model_swap_leaves_the_body_alone_and_rungate_is_stripped() {
    let body = Bytes::from_static(br#"{"contents":[],"generationConfig":{"maxOutputTokens":50}}"#);
    for rw in [
        Rewrite {
            model: Some("gemini-2.5-pro"),
            inject_include_usage: true,
            ..Rewrite::default()
        },
        Rewrite {
            max_output_tokens: Some(50),
            ..Rewrite::default()
        },
    ] {
        let out = rewrite_request(Dialect::Gemini, &body, &rw).unwrap();
        assert_eq!(out.as_ptr(), body.as_ptr(), "{rw:?}");
    }
    check_rewrite(
        Dialect::Gemini,
        r#"{"rungate":{"run_id":"r"},"contents":[]}"#,
        Rewrite {
            strip_rungate: true,
            ..Rewrite::default()
        },
        r#"{"contents":[]}"#,
    );
}
