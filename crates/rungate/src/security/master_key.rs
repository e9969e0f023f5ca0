//! The master key that encrypts provider keys at rest (AES-256-GCM, random 96-bit nonce per
//! value, stored as `v1:<base64 nonce||ciphertext>`). The key comes from config/env or from a
//! 0600 key file generated beside the database on first start, so the embedded default is
//! encrypted too, without the operator doing anything.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Secret;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key must be 32 bytes given as 64 hex characters or base64")]
    BadFormat,
    #[error("key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("stored secret cannot be decrypted with this master key (was the key changed?)")]
    Decrypt,
}

#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(*****)")
    }
}

impl MasterKey {
    pub fn parse(text: &str) -> Result<MasterKey, KeyError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| KeyError::BadFormat)?
        } else {
            STANDARD.decode(text).map_err(|_| KeyError::BadFormat)?
        };
        if bytes.len() != 32 {
            return Err(KeyError::BadFormat);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError::BadFormat)?;
        Ok(MasterKey { cipher })
    }

    /// Reads the key file, or creates it (mode 0600) with a random key. Returns the key and
    /// whether it was created, so the caller can tell the operator.
    pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool), KeyError> {
        let file_err = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((MasterKey::parse(&text)?, false)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = Aes256Gcm::generate_key(OsRng);
                let encoded = STANDARD.encode(key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(file_err)?;
                file.write_all(encoded.as_bytes()).map_err(file_err)?;
                Ok((MasterKey::parse(&encoded)?, true))
            }
            Err(err) => Err(file_err(err)),
        }
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        format!("v1:{}", STANDARD.encode(blob))
    }

    pub fn decrypt(&self, stored: &str) -> Result<Secret<String>, KeyError> {
        let blob = stored.strip_prefix("v1:").ok_or(KeyError::Decrypt)?;
        let blob = STANDARD.decode(blob).map_err(|_| KeyError::Decrypt)?;
        if blob.len() < 12 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ciphertext) = blob.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| KeyError::Decrypt)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| KeyError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_a_wrong_key() -> Result<(), KeyError> {
        let dir = tempfile::tempdir().map_err(|e| KeyError::File {
            path: "tmp".into(),
            source: e,
        })?;
        let path = dir.path().join("rungate.key");
        let (key, created) = MasterKey::load_or_create(&path)?;
        assert!(created);
        let stored = key.encrypt("sk-live-123");
        assert!(!stored.contains("sk-live-123"));
        let (again, created) = MasterKey::load_or_create(&path)?;
        assert!(!created);
        assert_eq!(again.decrypt(&stored)?.expose(), "sk-live-123");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map_err(|e| KeyError::File {
                path: "m".into(),
                source: e,
            })?;
            assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        }
        let other = MasterKey::parse(&"ab".repeat(32))?;
        assert!(matches!(other.decrypt(&stored), Err(KeyError::Decrypt)));
        Ok(())
    }
}
