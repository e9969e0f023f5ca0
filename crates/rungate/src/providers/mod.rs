//! Upstream providers: who they are (name, wire dialect, public endpoint, how a key is sent),
//! the one pooled HTTP client that reaches them, and the price table. Adding a provider means
//! a variant here and an adapter file; the proxy pipeline does not change.

pub mod pricing;
pub mod tokenizer;
mod upstream;

pub use upstream::{
    ForwardRequest, Upstream, UpstreamError, UpstreamResponse, error_chain as upstream_error_chain,
};

use rungate_wire::Dialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::OpenAi, Provider::Anthropic];

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        match name {
            "openai" => Some(Provider::OpenAi),
            "anthropic" => Some(Provider::Anthropic),
            _ => None,
        }
    }

    pub fn dialect(self) -> Dialect {
        match self {
            Provider::OpenAi => Dialect::OpenAi,
            Provider::Anthropic => Dialect::Anthropic,
        }
    }

    /// The public endpoint, without `/v1`.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::OpenAi => "https://api.openai.com",
            Provider::Anthropic => "https://api.anthropic.com",
        }
    }
}
