//! Request inspection, table-driven over every dialect.

use super::*;

const ALL_DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Responses,
    Dialect::Gemini,
];

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
fn responses_agent_request_with_items_instructions_and_tools() {
    let tool = r#"{"type":"function","name":"get_weather","description":"Get current temperature for a given location.","parameters":{"type":"object","properties":{"location":{"type":"string","description":"City and country e.g. Bogotá, Colombia"}},"required":["location"],"additionalProperties":false},"strict":true}"#;
    let web = r#"{"type":"web_search"}"#;
    let body = format!(
        r#"{{"model":"gpt-4.1","instructions":"You are a helpful assistant.",
        "input":[{{"role":"user","content":"What is the weather like in Paris today?"}},
          {{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather",
            "arguments":"{{\"location\":\"Paris\"}}","status":"completed"}},
          {{"type":"function_call_output","call_id":"call_1","output":"22C"}},
          {{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB"}},
          {{"role":"user","content":[{{"type":"input_text","text":"And tomorrow?"}},
            {{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"auto"}}]}}],
        "tools":[{tool},{web}],"tool_choice":"auto","stream":true,"max_output_tokens":1024,
        "previous_response_id":"resp_abc","store":false,"max_tokens":7,
        "stream_options":{{"include_usage":true}}}}"#
    );
    let expected = RequestFacts {
        stream: true,
        max_output_tokens: Some(1024),
        declared_tools: vec!["get_weather".into(), "web_search".into()],
        ..facts("gpt-4.1", 28 + 40 + 20 + 3 + 13 + tool.len() + web.len())
    };
    check(Dialect::Responses, &body, Ok(expected));
}

#[test]
fn responses_input_may_be_a_string_or_absent() {
    let story = "Tell me a three sentence bedtime story about a unicorn.";
    check(
        Dialect::Responses,
        &format!(r#"{{"model":"gpt-5","input":"{story}"}}"#),
        Ok(facts("gpt-5", story.len())),
    );
    // A follow-up on `previous_response_id` (or a stored prompt) may send no input at all.
    check(
        Dialect::Responses,
        r#"{"model":"gpt-5","previous_response_id":"resp_1"}"#,
        Ok(facts("gpt-5", 0)),
    );
    check(
        Dialect::Responses,
        r#"{"model":"gpt-5","input":null}"#,
        Ok(facts("gpt-5", 0)),
    );
    check(
        Dialect::Responses,
        r#"{"model":"gpt-5","input":42}"#,
        invalid("input", "expected a string or an array, found a number"),
    );
    check(
        Dialect::Responses,
        r#"{"input":"hi"}"#,
        Err(WireError::MissingField("model")),
    );
    check(
        Dialect::Responses,
        r#"{"model":"gpt-5","max_output_tokens":"9"}"#,
        invalid(
            "max_output_tokens",
            "expected a non-negative integer, found a string",
        ),
    );
}

#[test]
fn responses_built_in_tools_are_declared_by_their_type() {
    let tools = [
        r#"{"type":"web_search_preview","search_context_size":"low"}"#,
        r#"{"type":"file_search","vector_store_ids":["vs_1234567890"],"max_num_results":20}"#,
        r#"{"type":"mcp","server_label":"deepwiki","server_url":"https://mcp.deepwiki.com/mcp","require_approval":"never"}"#,
        r#"{"type":"custom","name":"code_exec","description":"Executes arbitrary python code"}"#,
        r#"{"name":"untyped"}"#,
        r#"{"description":"neither"}"#,
    ];
    let body = format!(
        r#"{{"model":"o4-mini","input":"","tools":[{}]}}"#,
        tools.join(",")
    );
    let expected = RequestFacts {
        declared_tools: [
            "web_search_preview",
            "file_search",
            "mcp",
            "code_exec",
            "untyped",
        ]
        .map(String::from)
        .to_vec(),
        ..facts("o4-mini", tools.iter().map(|t| t.len()).sum())
    };
    check(Dialect::Responses, &body, Ok(expected));
}

const GEMINI_TOOL: &str = r#"{"functionDeclarations":[{"name":"schedule_meeting","description":"Schedules a meeting with specified attendees at a given time and date.","parameters":{"type":"object","properties":{"attendees":{"type":"array","items":{"type":"string"},"description":"List of people attending the meeting."},"date":{"type":"string","description":"Date of the meeting (e.g., '2024-07-29')"},"time":{"type":"string","description":"Time of the meeting (e.g., '15:00')"},"topic":{"type":"string","description":"The subject or topic of the meeting."}},"required":["attendees","date","time","topic"]}}]}"#;

#[test]
fn gemini_request_with_function_turns_system_instruction_and_generation_config() {
    let ask =
        "Schedule a meeting with Bob and Alice for 03/27/2025 at 10:00 AM about the Q3 planning.";
    let args =
        r#"{"attendees":["Bob","Alice"],"date":"2025-03-27","time":"10:00","topic":"Q3 planning"}"#;
    let result = r#"{"status":"scheduled","id":"m_1"}"#;
    let search = r#"{"googleSearch":{}}"#;
    let body = format!(
        r#"{{"contents":[{{"role":"user","parts":[{{"text":"{ask}"}},
            {{"inlineData":{{"mimeType":"image/jpeg","data":"/9j/4AAQSkZJRg"}}}},
            {{"fileData":{{"mimeType":"application/pdf","fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}}}]}},
          {{"role":"model","parts":[{{"functionCall":{{"name":"schedule_meeting","args":{args}}}}}]}},
          {{"role":"user","parts":[{{"functionResponse":{{"name":"schedule_meeting","response":{result}}}}}]}}],
        "systemInstruction":{{"parts":[{{"text":"You are a scheduling assistant."}}]}},
        "tools":[{GEMINI_TOOL},{search}],
        "toolConfig":{{"functionCallingConfig":{{"mode":"AUTO"}}}},
        "generationConfig":{{"temperature":0.2,"maxOutputTokens":800,"stopSequences":["END"],
          "thinkingConfig":{{"thinkingBudget":1024}}}},
        "safetySettings":[{{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}}]}}"#
    );
    let expected = RequestFacts {
        max_output_tokens: Some(800),
        declared_tools: vec!["schedule_meeting".into(), "googleSearch".into()],
        ..facts(
            "",
            ask.len() + args.len() + result.len() + 31 + GEMINI_TOOL.len() + search.len(),
        )
    };
    check(Dialect::Gemini, &body, Ok(expected));
}

#[test]
fn gemini_snake_case_spellings_are_read_too() {
    let tool =
        r#"{"function_declarations":[{"name":"get_weather","parameters":{"type":"object"}}]}"#;
    let search = r#"{"google_search":{}}"#;
    let body = format!(
        r#"{{"system_instruction":{{"parts":{{"text":"You are a cat."}}}},
        "contents":[{{"parts":[{{"text":"Hello there"}}]}}],"tools":[{tool},{search}],
        "generation_config":{{"max_output_tokens":64}}}}"#
    );
    let expected = RequestFacts {
        max_output_tokens: Some(64),
        declared_tools: vec!["get_weather".into(), "googleSearch".into()],
        ..facts("", 14 + 11 + tool.len() + search.len())
    };
    check(Dialect::Gemini, &body, Ok(expected));
}

#[test]
fn gemini_body_has_no_model_or_stream_but_needs_contents() {
    // The model and streaming are chosen by the URL; body members of those names are not read.
    check(
        Dialect::Gemini,
        r#"{"model":42,"stream":"yes","contents":[]}"#,
        Ok(facts("", 0)),
    );
    check(
        Dialect::Gemini,
        r#"{"generationConfig":{"maxOutputTokens":10}}"#,
        Err(WireError::MissingField("contents")),
    );
    check(
        Dialect::Gemini,
        r#"{"contents":"hi"}"#,
        invalid("contents", "expected an array, found a string"),
    );
    check(
        Dialect::Gemini,
        r#"{"contents":[],"generationConfig":{"maxOutputTokens":-1}}"#,
        invalid(
            "generationConfig.maxOutputTokens",
            "expected a non-negative integer, found a number",
        ),
    );
    check(
        Dialect::Gemini,
        r#"{"contents":[],"generationConfig":null,"rungate":{"run_id":"run_7"}}"#,
        Ok(RequestFacts {
            body_run_id: Some("run_7".to_owned()),
            has_rungate_field: true,
            ..facts("", 0)
        }),
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
    for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Responses] {
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
    for dialect in ALL_DIALECTS {
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
    }
    // The column is where serde_json notices, which differs by one between a string it reads
    // (chat `messages`) and one it skips (a member other dialects do not know).
    for (dialect, column) in [
        (Dialect::OpenAi, 38),
        (Dialect::Anthropic, 38),
        (Dialect::Responses, 37),
        (Dialect::Gemini, 37),
    ] {
        check(
            dialect,
            "{\"model\":\"m\",\"messages\":[{\"content\":\"\u{1}\"}]}",
            malformed(
                1,
                column,
                "control character (\\u0000-\\u001F) found while parsing a string",
            ),
        );
    }
}
