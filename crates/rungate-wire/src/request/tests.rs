//! Request inspection and rewriting, table-driven over both dialects.

use bytes::Bytes;

use super::*;

fn check(dialect: Dialect, body: &str, expected: Result<RequestFacts, WireError>) {
    assert_eq!(
        inspect_request(dialect, body.as_bytes()),
        expected,
        "{body}"
    );
}

fn facts(model: &str, prompt_chars: usize) -> RequestFacts {
    RequestFacts {
        model: model.to_owned(),
        prompt_chars,
        ..RequestFacts::default()
    }
}

fn invalid(field: &'static str, message: &str) -> Result<RequestFacts, WireError> {
    Err(WireError::InvalidField {
        field,
        message: message.to_owned(),
    })
}

fn malformed(line: usize, column: usize, message: &str) -> Result<RequestFacts, WireError> {
    Err(WireError::MalformedJson {
        line,
        column,
        message: message.to_owned(),
    })
}

#[test]
fn openai_typical_streaming_request() {
    let body = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},
        {"role":"user","content":"Hi there"}],"stream":true,"stream_options":{"include_usage":true},
        "max_completion_tokens":256,"max_tokens":999,"temperature":0.7}"#;
    let expected = RequestFacts {
        stream: true,
        include_usage: true,
        max_output_tokens: Some(256),
        ..facts("gpt-4o", 17)
    };
    check(Dialect::OpenAi, body, Ok(expected));
}

#[test]
fn openai_max_tokens_and_stream_options_variants() {
    let base = |extra: &str| format!(r#"{{"model":"m","messages":[]{extra}}}"#);
    let with = |max: Option<u64>, usage: bool| {
        Ok(RequestFacts {
            max_output_tokens: max,
            include_usage: usage,
            ..facts("m", 0)
        })
    };
    check(
        Dialect::OpenAi,
        &base(r#","max_tokens":64"#),
        with(Some(64), false),
    );
    check(
        Dialect::OpenAi,
        &base(r#","max_completion_tokens":null,"max_tokens":64"#),
        with(Some(64), false),
    );
    check(
        Dialect::OpenAi,
        &base(r#","stream_options":{"include_usage":false}"#),
        with(None, false),
    );
    check(
        Dialect::OpenAi,
        &base(r#","stream_options":null,"stream":false"#),
        with(None, false),
    );
    check(
        Dialect::OpenAi,
        &base(r#","stream_options":{"include_obfuscation":false,"include_usage":true}"#),
        with(None, true),
    );
    check(
        Dialect::OpenAi,
        &base(r#","max_tokens":-1"#),
        invalid(
            "max_tokens",
            "expected a non-negative integer, found a number",
        ),
    );
    check(
        Dialect::OpenAi,
        &base(r#","max_completion_tokens":"9""#),
        invalid(
            "max_completion_tokens",
            "expected a non-negative integer, found a string",
        ),
    );
    check(
        Dialect::OpenAi,
        &base(r#","stream":"yes""#),
        invalid("stream", "expected a boolean, found a string"),
    );
    // Anthropic has neither max_completion_tokens nor stream_options: they are just unknown fields.
    check(
        Dialect::Anthropic,
        &base(r#","max_completion_tokens":5,"stream_options":{"include_usage":true}"#),
        with(None, false),
    );
}

#[test]
fn openai_content_parts_tool_calls_and_unknown_roles_are_counted() {
    let body = r#"{"model":"gpt-4o","messages":[
        {"role":"developer","content":"héllo \u00e9"},
        {"role":"user","content":[{"type":"text","text":"Look"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
            {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
            "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"22C"},
        {"role":"critic","content":"odd but fine","weight":3},
        "not even an object", 42]}"#;
    check(
        Dialect::OpenAi,
        body,
        Ok(facts("gpt-4o", 7 + 4 + 16 + 3 + 12)),
    );
}

#[test]
fn openai_declared_tools_and_legacy_functions() {
    let tool = r#"{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}"#;
    let custom = r#"{"type":"custom","custom":{"name":"run_sql","format":{"type":"text"}}}"#;
    let odd = r#"{"type":"function","function":"no name here"}"#;
    let legacy = r#"{"name":"delete_database","parameters":{}}"#;
    let body = format!(
        r#"{{"model":"gpt-4o","tools":[{tool},{custom},{odd}],"messages":[{{"role":"user","content":"Weather?"}}],"functions":[{legacy}],"tool_choice":"auto"}}"#
    );
    let expected = RequestFacts {
        declared_tools: vec![
            "get_weather".into(),
            "run_sql".into(),
            "delete_database".into(),
        ],
        ..facts(
            "gpt-4o",
            8 + tool.len() + custom.len() + odd.len() + legacy.len(),
        )
    };
    check(Dialect::OpenAi, &body, Ok(expected));
}

#[test]
fn anthropic_typical_request_with_system_blocks_tools_and_tool_results() {
    let tool = r#"{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}"#;
    let server_tool = r#"{"type":"web_search_20250305","name":"web_search","max_uses":5}"#;
    let body = format!(
        r#"{{"model":"claude-sonnet-4-20250514","max_tokens":1024,"stream":true,
        "system":[{{"type":"text","text":"You are Claude.","cache_control":{{"type":"ephemeral"}}}}],
        "tools":[{tool},{server_tool}],
        "messages":[{{"role":"user","content":"Weather in Paris?"}},
          {{"role":"assistant","content":[{{"type":"text","text":"Let me check."}},
            {{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{{"city":"Paris"}}}}]}},
          {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_1",
            "content":[{{"type":"text","text":"22C"}}]}},
            {{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"AAAA"}}}}]}},
          {{"role":"system","content":"trailing system message some agents send"}}],
        "metadata":{{"user_id":"u1"}},"thinking":{{"type":"enabled","budget_tokens":2000}}}}"#
    );
    let expected = RequestFacts {
        stream: true,
        max_output_tokens: Some(1024),
        declared_tools: vec!["get_weather".into(), "web_search".into()],
        ..facts(
            "claude-sonnet-4-20250514",
            17 + 15 + 13 + 16 + 3 + 40 + tool.len() + server_tool.len(),
        )
    };
    check(Dialect::Anthropic, &body, Ok(expected));
}

#[test]
fn anthropic_system_as_string_and_count_tokens_shape() {
    let body = r#"{"model":"claude-3-5-haiku-latest","system":"Be terse.","messages":[{"role":"user","content":"Hi"}]}"#;
    check(
        Dialect::Anthropic,
        body,
        Ok(facts("claude-3-5-haiku-latest", 11)),
    );
    // For OpenAI a top-level `system` is not a prompt field: it is skipped like any unknown one.
    check(
        Dialect::OpenAi,
        body,
        Ok(facts("claude-3-5-haiku-latest", 2)),
    );
}

#[test]
fn rungate_field_is_reported_for_removal() {
    let with = |run_id: Option<&str>| {
        Ok(RequestFacts {
            body_run_id: run_id.map(str::to_owned),
            has_rungate_field: true,
            ..facts("m", 0)
        })
    };
    for dialect in [Dialect::OpenAi, Dialect::Anthropic] {
        let body = r#"{"model":"m","rungate":{"run_id":"run_42","extra":[1]},"messages":[]}"#;
        check(dialect, body, with(Some("run_42")));
        check(
            dialect,
            r#"{"model":"m","messages":[],"rungate":{}}"#,
            with(None),
        );
        check(
            dialect,
            r#"{"model":"m","messages":[],"rungate":null}"#,
            with(None),
        );
        check(
            dialect,
            r#"{"model":"m","messages":[],"rungate":"run_42"}"#,
            invalid("rungate", "expected an object, found a string"),
        );
        check(
            dialect,
            r#"{"model":"m","messages":[],"rungate":{"run_id":7}}"#,
            invalid("rungate.run_id", "expected a string, found a number"),
        );
    }
}

#[test]
fn required_fields_are_enforced() {
    for dialect in [Dialect::OpenAi, Dialect::Anthropic] {
        check(
            dialect,
            r#"{"messages":[]}"#,
            Err(WireError::MissingField("model")),
        );
        check(
            dialect,
            r#"{"model":null,"messages":[]}"#,
            Err(WireError::MissingField("model")),
        );
        check(
            dialect,
            r#"{"model":42,"messages":[]}"#,
            invalid("model", "expected a string, found a number"),
        );
        check(
            dialect,
            r#"{"model":{"id":"x"},"messages":[]}"#,
            invalid("model", "expected a string, found an object"),
        );
        check(
            dialect,
            r#"{"model":"","messages":[]}"#,
            invalid("model", "must not be empty"),
        );
        check(
            dialect,
            r#"{"model":"m"}"#,
            Err(WireError::MissingField("messages")),
        );
        check(
            dialect,
            r#"{"model":"m","messages":null}"#,
            Err(WireError::MissingField("messages")),
        );
        check(
            dialect,
            r#"{"model":"m","messages":"hi"}"#,
            invalid("messages", "expected an array, found a string"),
        );
        check(
            dialect,
            r#"{"model":"m","messages":{"role":"user"}}"#,
            invalid("messages", "expected an array, found an object"),
        );
    }
}

#[test]
fn malformed_json_reports_line_and_column() {
    for dialect in [Dialect::OpenAi, Dialect::Anthropic] {
        check(
            dialect,
            "{\"model\": \"gpt-4o\",\n \"messages\": [}",
            malformed(2, 15, "expected value"),
        );
        check(dialect, "", malformed(1, 0, "EOF while parsing a value"));
        check(
            dialect,
            "{\"model\":\"m\",\"messages\":[]} x",
            malformed(1, 29, "trailing characters"),
        );
        check(
            dialect,
            "[1,2]",
            malformed(1, 0, "invalid type: sequence, expected a JSON object"),
        );
        check(
            dialect,
            "{\"model\":\"m\",\"messages\":[{\"content\":\"\u{1}\"}]}",
            malformed(
                1,
                38,
                "control character (\\u0000-\\u001F) found while parsing a string",
            ),
        );
    }
}

// ---- rewrite_request ----

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
