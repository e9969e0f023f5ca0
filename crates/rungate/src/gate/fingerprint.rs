//! The request fingerprint: what makes a retry "the same request" as the one an approver saw.
//!
//! `SHA-256(method, path, canonical JSON body)`. Canonical means object keys sorted at every
//! depth and no whitespace, so an SDK that re-serialises the body in another key order still
//! matches; the top-level `rungate` field (run metadata that Rungate strips before forwarding)
//! is left out. Everything else counts: a retry that changes one argument, one message or the
//! model is a different request and does not inherit the approval.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Fields that say nothing about what the request asks the model or tool to do.
const VOLATILE: &[&str] = &["rungate"];

/// Hex SHA-256 of the request's method, path and canonical body. A body that is not JSON is
/// hashed as its bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            for field in VOLATILE {
                map.remove(*field);
            }
            let mut out = String::with_capacity(body.len());
            write_canonical(&Value::Object(map), &mut out);
            hasher.update(out.as_bytes());
        }
        Ok(other) => {
            let mut out = String::new();
            write_canonical(&other, &mut out);
            hasher.update(out.as_bytes());
        }
        Err(_) => hasher.update(body),
    }
    hex::encode(hasher.finalize())
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/v1/chat/completions";

    #[test]
    fn key_order_whitespace_and_the_rungate_field_do_not_matter() {
        let a =
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"a":1,"b":2}]}"#;
        let b = br#"{ "tools":[{"b":2,"a":1}], "messages":[{"content":"hi","role":"user"}], "model":"m",
                     "rungate":{"run_id":"r1"} }"#;
        assert_eq!(fingerprint("POST", PATH, a), fingerprint("POST", PATH, b));
    }

    #[test]
    fn any_change_to_what_is_asked_is_another_request() {
        let base = fingerprint(
            "POST",
            PATH,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        );
        for other in [
            &br#"{"model":"m","messages":[{"role":"user","content":"hi!"}]}"#[..],
            br#"{"model":"n","messages":[{"role":"user","content":"hi"}]}"#,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
        ] {
            assert_ne!(base, fingerprint("POST", PATH, other));
        }
        assert_ne!(
            base,
            fingerprint(
                "POST",
                "/v1/messages",
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
            )
        );
        assert_ne!(
            fingerprint("POST", PATH, b"not json"),
            fingerprint("POST", PATH, b"not json!")
        );
    }
}
