//! Bearer tokens for agents (`rg_agt_…`, legacy `rg_sk_…`) and admins (`rg_adm_…`), and the
//! secrets of dashboard sessions (`rg_ses_…`, carried in a cookie).
//! A token is shown once at creation; the store only ever sees its SHA-256 digest, so a leaked
//! database does not leak working credentials. SHA-256 (not a slow KDF) is right here: tokens
//! carry 190+ bits of randomness, and the digest is computed on every proxied call.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Agent,
    Admin,
    /// A dashboard session's cookie value.
    Session,
    /// A webhook signing secret (kept encrypted, not hashed: it must sign).
    WebhookSecret,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Agent => "rg_agt_",
            TokenKind::Admin => "rg_adm_",
            TokenKind::Session => "rg_ses_",
            TokenKind::WebhookSecret => "whsec_",
        }
    }
}

/// Hex SHA-256 digest of a token: the only form in which tokens are stored or looked up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

/// A fresh token: prefix + 43 url-safe characters (32 random bytes).
pub fn generate_token(kind: TokenKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("{}{body}", kind.prefix())
}

pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(hex::encode(Sha256::digest(token.as_bytes())))
}

/// `…abcd`: enough for an operator to tell keys apart, useless to an attacker.
pub fn mask_suffix(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_stably() {
        let a = generate_token(TokenKind::Agent);
        let b = generate_token(TokenKind::Agent);
        assert!(a.starts_with("rg_agt_") && a.len() >= 7 + 32);
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(generate_token(TokenKind::Admin).starts_with("rg_adm_"));
        assert_eq!(generate_token(TokenKind::Session).len(), 7 + 43);
        assert_eq!(mask_suffix("sk-abcdef1234"), "...1234");
    }
}
