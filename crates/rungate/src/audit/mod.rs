//! The audit record: every state change of a run as an event in a per-run hash chain,
//! `hash = SHA-256(prev_hash || canonical event)`, written in the same transaction as the change
//! it describes. Tampering with, dropping or reordering an event breaks every later hash. The
//! run's row keeps the chain's head (last `seq` and hash) in the same transaction, so dropping
//! the *last* events, which no later hash covers, is caught too.

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
    canonical_with_data(run_id, seq, kind, actor, &data.to_string(), at_ms)
}

/// [`canonical`] for an event whose `data` is already compact JSON text — the writer has it
/// anyway for the row, so the event is serialised once, not twice.
pub fn canonical_with_data(
    run_id: &str,
    seq: i64,
    kind: &str,
    actor: &str,
    data_json: &str,
    at_ms: i64,
) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""));
    let mut out = String::with_capacity(data_json.len() + run_id.len() + actor.len() + 96);
    out.push_str("{\"run_id\":");
    out.push_str(&quoted(run_id));
    out.push_str(",\"seq\":");
    out.push_str(&seq.to_string());
    out.push_str(",\"kind\":");
    out.push_str(&quoted(kind));
    out.push_str(",\"actor\":");
    out.push_str(&quoted(actor));
    out.push_str(",\"data\":");
    out.push_str(data_json);
    out.push_str(",\"at_ms\":");
    out.push_str(&at_ms.to_string());
    out.push('}');
    out
}

pub fn chain(prev_hash: &str, canonical_event: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical_event.as_bytes());
    hex::encode(hasher.finalize())
}

/// Where a run's chain ends, as recorded on the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: Option<String>,
}

/// The first event at which a chain does not hold, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: &'static str,
}

/// Recomputes the chain and checks it ends at `head`; names the first event that does not hold.
pub fn verify(events: &[ChainedEvent], head: &AuditHead) -> Result<(), Broken> {
    let mut prev = GENESIS.to_owned();
    let broken = |seq, reason| Err(Broken { seq, reason });
    for (expected, event) in (1..).zip(events) {
        if event.seq != expected {
            return broken(expected, "event missing");
        }
        let body = canonical(
            &event.run_id,
            event.seq,
            &event.kind,
            &event.actor,
            &event.data,
            event.at_ms,
        );
        if event.prev_hash != prev {
            return broken(event.seq, "does not follow the previous event");
        }
        if chain(&prev, &body) != event.hash {
            return broken(event.seq, "content does not match its hash");
        }
        prev = event.hash.clone();
    }
    let last = i64::try_from(events.len()).unwrap_or(i64::MAX);
    if head.seq < last {
        return broken(head.seq + 1, "event the run does not record");
    }
    if head.seq > last {
        return broken(last + 1, "event missing (the run records a longer chain)");
    }
    if head.seq == last && last > 0 && head.hash.as_deref() != Some(prev.as_str()) {
        return broken(last, "the chain does not end where the run says it does");
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
    fn the_writers_form_matches_the_json_form_byte_for_byte() {
        let data = serde_json::json!({"b": 1.5, "a": ["x\"y", null], "c": {"z": 0.00045}});
        let reference = serde_json::json!({"run_id": "r\"1", "seq": 7, "kind": "step.recorded",
            "actor": "agent:a\\b", "data": data, "at_ms": -3})
        .to_string();
        assert_eq!(
            canonical("r\"1", 7, "step.recorded", "agent:a\\b", &data, -3),
            reference
        );
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

    fn head(events: &[ChainedEvent]) -> AuditHead {
        AuditHead {
            seq: events.last().map_or(0, |e| e.seq),
            hash: events.last().map(|e| e.hash.clone()),
        }
    }

    fn broken_at(events: &[ChainedEvent], head: &AuditHead) -> Option<i64> {
        verify(events, head).err().map(|b| b.seq)
    }

    #[test]
    fn tampering_breaks_the_chain_at_the_first_bad_event() {
        let events = chained(4);
        let full = head(&events);
        assert_eq!(verify(&events, &full), Ok(()));
        let mut edited = events.clone();
        edited[2].data = serde_json::json!({"n": 99});
        assert_eq!(broken_at(&edited, &full), Some(3));
        let mut dropped = events.clone();
        dropped.remove(1);
        assert_eq!(broken_at(&dropped, &full), Some(2));
        let mut swapped = events.clone();
        swapped.swap(1, 2);
        (swapped[1].seq, swapped[2].seq) = (2, 3);
        assert_eq!(broken_at(&swapped, &full), Some(2));
        let mut tail = events.clone();
        tail.pop();
        assert_eq!(broken_at(&tail, &full), Some(4), "a dropped last event");
        let mut extra = events.clone();
        extra.truncate(3);
        assert_eq!(
            broken_at(&events, &head(&extra)),
            Some(4),
            "an event added behind the run's back"
        );
    }
}
