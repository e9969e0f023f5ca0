//! The audit record: every state change of a run as an event in a per-run hash chain,
//! `hash = SHA-256(prev_hash || canonical event)`, written in the same transaction as the change
//! it describes. Tampering with, dropping or reordering an event breaks every later hash.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash before a run's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event about to be appended; the store assigns `seq` and the chain hashes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    pub kind: &'static str,
    pub actor: String,
    pub data: serde_json::Value,
    pub at_ms: i64,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChainedEvent {
    pub run_id: String,
    pub seq: i64,
    pub kind: String,
    pub actor: String,
    pub data: serde_json::Value,
    pub at_ms: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical bytes of an event: fixed key order, no whitespace.
pub fn canonical(
    run_id: &str,
    seq: i64,
    kind: &str,
    actor: &str,
    data: &serde_json::Value,
    at_ms: i64,
) -> String {
    serde_json::json!({"run_id": run_id, "seq": seq, "kind": kind, "actor": actor, "data": data, "at_ms": at_ms})
        .to_string()
}

pub fn chain(prev_hash: &str, canonical_event: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical_event.as_bytes());
    hex::encode(hasher.finalize())
}

/// Recomputes the chain; returns the `seq` of the first event that does not hold.
pub fn verify(events: &[ChainedEvent]) -> Result<(), i64> {
    let mut prev = GENESIS.to_owned();
    for event in events {
        let body = canonical(
            &event.run_id,
            event.seq,
            &event.kind,
            &event.actor,
            &event.data,
            event.at_ms,
        );
        if event.prev_hash != prev || chain(&prev, &body) != event.hash {
            return Err(event.seq);
        }
        prev = event.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chained(n: i64) -> Vec<ChainedEvent> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let data = serde_json::json!({"n": seq});
                let hash = chain(
                    &prev,
                    &canonical("r", seq, "step.recorded", "agent:a", &data, seq),
                );
                let event = ChainedEvent {
                    run_id: "r".into(),
                    seq,
                    kind: "step.recorded".into(),
                    actor: "agent:a".into(),
                    data,
                    at_ms: seq,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                event
            })
            .collect()
    }

    #[test]
    fn canonical_form_is_compact_json_in_a_fixed_key_order() {
        let data = serde_json::json!({"b": 1, "a": "x\"y"});
        let text = canonical("r\"1", 2, "step.recorded", "agent:a", &data, 3);
        assert_eq!(
            text,
            r#"{"run_id":"r\"1","seq":2,"kind":"step.recorded","actor":"agent:a","data":{"b":1,"a":"x\"y"},"at_ms":3}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(parsed["data"], data);
    }

    #[test]
    fn tampering_breaks_the_chain_at_the_edited_event() {
        let mut events = chained(4);
        assert_eq!(verify(&events), Ok(()));
        events[2].data = serde_json::json!({"n": 99});
        assert_eq!(verify(&events), Err(3));
        let mut dropped = chained(4);
        dropped.remove(1);
        assert_eq!(verify(&dropped), Err(3));
    }
}
