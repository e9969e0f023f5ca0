//! The half of a Gemini call that is not in its body: the URL path names the model and the
//! method (`/v1beta/models/gemini-2.5-flash:streamGenerateContent`, or Vertex AI's
//! `/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-flash:generateContent`).
//! [`super::inspect_request`] leaves `model` empty and `stream` false for Gemini; the gateway
//! reads them here, and swaps the model here on failover.

/// What a Gemini URL path says about the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeminiPath<'a> {
    /// The model id, without the `models/` prefix.
    pub model: &'a str,
    pub method: GeminiMethod,
}

/// The Gemini methods Rungate governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiMethod {
    /// `:generateContent`, one JSON answer.
    Generate,
    /// `:streamGenerateContent` (SSE with `?alt=sse`).
    StreamGenerate,
    /// `:countTokens`, which generates nothing.
    CountTokens,
}

impl GeminiMethod {
    /// Whether the answer is a stream.
    pub fn streams(self) -> bool {
        self == GeminiMethod::StreamGenerate
    }
}

impl<'a> GeminiPath<'a> {
    /// Reads a URL path (without its query); `None` when it does not end in
    /// `models/{model}:{method}` with a non-empty model and a known method.
    pub fn parse(path: &'a str) -> Option<Self> {
        let (_, target) = path.rsplit_once("/models/")?;
        let (model, method) = target.split_once(':')?;
        let method = match method {
            "generateContent" => GeminiMethod::Generate,
            "streamGenerateContent" => GeminiMethod::StreamGenerate,
            "countTokens" => GeminiMethod::CountTokens,
            _ => return None,
        };
        if model.is_empty() || model.contains('/') {
            return None;
        }
        Some(GeminiPath { model, method })
    }

    /// The same path with another model, for failover; `None` when `path` does not parse.
    pub fn with_model(path: &str, model: &str) -> Option<String> {
        GeminiPath::parse(path)?;
        let (prefix, _) = path.rsplit_once("/models/")?;
        let (_, method) = path.rsplit_once(':')?;
        Some(format!("{prefix}/models/{model}:{method}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_and_method_from_gemini_and_vertex_paths() {
        let check = |path: &str, expected: Option<(&str, GeminiMethod)>| {
            let parsed = GeminiPath::parse(path).map(|p| (p.model, p.method));
            assert_eq!(parsed, expected, "{path}");
        };
        check(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            Some(("gemini-2.5-flash", GeminiMethod::StreamGenerate)),
        );
        check(
            "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent",
            Some(("gemini-2.5-pro", GeminiMethod::Generate)),
        );
        check(
            "/v1beta/models/gemini-2.0-flash-001:countTokens",
            Some(("gemini-2.0-flash-001", GeminiMethod::CountTokens)),
        );
        check("/v1beta/models/gemini-2.5-flash:embedContent", None);
        check("/v1beta/models/:generateContent", None);
        check("/v1beta/models/gemini-2.5-flash", None);
        check("/v1/chat/completions", None);
        assert!(GeminiMethod::StreamGenerate.streams() && !GeminiMethod::Generate.streams());
    }

    #[test]
    fn swaps_the_model_in_a_path() {
        assert_eq!(
            GeminiPath::with_model(
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                "gemini-2.5-flash"
            )
            .as_deref(),
            Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        );
        assert_eq!(GeminiPath::with_model("/v1/responses", "gpt-5"), None);
    }
}
