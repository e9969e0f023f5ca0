//! Everything that handles secret material, kept in one place so it can be reviewed as a unit:
//! [`Secret`] (prints `*****`), generating and hashing agent tokens, admin tokens and dashboard
//! session secrets (only SHA-256 digests are stored), and [`MasterKey`] (AES-256-GCM for
//! provider keys at rest).

mod master_key;
mod secret;
mod token;

pub use master_key::{KeyError, MasterKey};
pub use secret::Secret;
pub use token::{TokenHash, TokenKind, generate_token, hash_token, mask_suffix};
