//! Upstream providers: who they are (name, wire dialect, public endpoint, how a key is sent),
//! the one pooled HTTP client that reaches them, and the price table (with its LiteLLM import). Adding a provider means
//! a variant here and an adapter file; the proxy pipeline does not change.

pub mod health;
pub mod litellm;
pub mod pricing;
pub mod tokenizer;
mod upstream;

pub use upstream::{
    ForwardRequest, Upstream, UpstreamError, UpstreamResponse, error_chain as upstream_error_chain,
};

use rungate_wire::Dialect;

/// A kind of upstream. The kind decides the wire dialect and how a key is sent; a provider key
/// (a credential plus an optional `base_url`) is one instance of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    OpenAi,
    Anthropic,
    /// The Gemini API (`generateContent`), key in `x-goog-api-key`.
    Gemini,
    /// Any endpoint speaking OpenAI Chat Completions (vLLM, Ollama, Groq, Mistral, OpenRouter):
    /// a `base_url` is required, the key (if any) is a bearer token.
    OpenAiCompatible,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::OpenAi,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::OpenAiCompatible,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::OpenAiCompatible => "openai_compatible",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The dialect of its chat endpoint. OpenAI also serves the Responses API, which a
    /// Responses caller reaches without translation (see [`Provider::speaks`]).
    pub fn dialect(self) -> Dialect {
        match self {
            Provider::OpenAi | Provider::OpenAiCompatible => Dialect::OpenAi,
            Provider::Anthropic => Dialect::Anthropic,
            Provider::Gemini => Dialect::Gemini,
        }
    }

    /// The dialect to send a call that arrived in `client` dialect: the client's own when
    /// this provider serves it, else the provider's chat dialect (and the call is translated).
    pub fn speaks(self, client: Dialect) -> Dialect {
        match (self, client) {
            (Provider::OpenAi, Dialect::Responses) => Dialect::Responses,
            _ => self.dialect(),
        }
    }

    /// The public endpoint, without `/v1`; `None` when a key must name its own `base_url`.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi => Some("https://api.openai.com"),
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::Gemini => Some("https://generativelanguage.googleapis.com"),
            Provider::OpenAiCompatible => None,
        }
    }

    /// The provider a bare model name belongs to, by its family prefix; `None` for names no
    /// built-in family claims (self-hosted models, say), which stay with the ingress provider.
    pub fn of_model(model: &str) -> Option<Provider> {
        let family = |prefixes: &[&str]| prefixes.iter().any(|p| model.starts_with(p));
        if family(&[
            "gpt-",
            "chatgpt-",
            "o1",
            "o3",
            "o4",
            "codex-",
            "text-embedding-",
        ]) {
            Some(Provider::OpenAi)
        } else if family(&["claude-"]) {
            Some(Provider::Anthropic)
        } else if family(&["gemini-", "gemma-"]) {
            Some(Provider::Gemini)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_models_find_their_family() {
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.name()), Some(provider));
        }
        assert_eq!(Provider::parse("google"), None);
        assert_eq!(Provider::of_model("gpt-4o-mini"), Some(Provider::OpenAi));
        assert_eq!(Provider::of_model("o3-mini"), Some(Provider::OpenAi));
        assert_eq!(
            Provider::of_model("claude-sonnet-4-5"),
            Some(Provider::Anthropic)
        );
        assert_eq!(
            Provider::of_model("gemini-2.5-flash"),
            Some(Provider::Gemini)
        );
        assert_eq!(Provider::of_model("llama-3.1-8b"), None);
        assert_eq!(
            Provider::OpenAi.speaks(Dialect::Responses),
            Dialect::Responses
        );
        assert_eq!(
            Provider::OpenAiCompatible.speaks(Dialect::Responses),
            Dialect::OpenAi
        );
        assert_eq!(Provider::Gemini.speaks(Dialect::OpenAi), Dialect::Gemini);
    }
}
