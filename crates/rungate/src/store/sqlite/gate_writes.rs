//! Gate transitions as the run writer applies them: inside its transaction, with the audit
//! events of the run they belong to. The writer is the only thread that changes gates, so each
//! condition checked here ("still pending", "approved and unused") holds until the commit.

use rusqlite::{Connection, params};

use super::run_writer::append_audit;
use crate::audit::AuditEvent;
use crate::gate::{Decision, Gate, GateId, GateStatus};
use crate::store::{StoreError, StoreResult};

pub(super) enum GateChange {
    Open {
        gates: Vec<Gate>,
        events: Vec<AuditEvent>,
        now_ms: i64,
    },
    Decide {
        id: GateId,
        decision: Decision,
        event: AuditEvent,
    },
    Consume {
        run_id: String,
        ids: Vec<GateId>,
        event: AuditEvent,
        now_ms: i64,
    },
    Expire {
        now_ms: i64,
    },
}

pub(super) enum GateOutcome {
    /// The gates opened (or already open for the request), or the gates that expired.
    Ids(Vec<GateId>),
    /// Whether a conditional transition happened.
    Changed(bool),
}

pub(super) fn apply(tx: &Connection, change: &GateChange) -> StoreResult<GateOutcome> {
    match change {
        GateChange::Open {
            gates,
            events,
            now_ms,
        } => open(tx, gates, events, *now_ms).map(GateOutcome::Ids),
        GateChange::Decide {
            id,
            decision,
            event,
        } => decide(tx, id, decision, event).map(GateOutcome::Changed),
        GateChange::Consume {
            run_id,
            ids,
            event,
            now_ms,
        } => consume(tx, run_id, ids, event, *now_ms).map(GateOutcome::Changed),
        GateChange::Expire { now_ms } => expire(tx, *now_ms).map(GateOutcome::Ids),
    }
}

fn open(
    tx: &Connection,
    gates: &[Gate],
    events: &[AuditEvent],
    now_ms: i64,
) -> StoreResult<Vec<GateId>> {
    let Some(first) = gates.first() else {
        return Ok(Vec::new());
    };
    let existing = open_for_request(tx, &first.run_id, &first.fingerprint, now_ms)?;
    if !existing.is_empty() {
        return Ok(existing);
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO gates (id, run_id, agent_id, trigger, rule, tool, args, approver_channel, fingerprint, status, created_at, expires_at, held_status, held_content_type, held_body, held_step_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for g in gates {
        let held = g.held.as_ref();
        insert.execute(params![
            g.id.0,
            g.run_id,
            g.agent_id,
            g.trigger.as_str(),
            g.rule,
            g.tool,
            g.args.to_string(),
            g.approver_channel,
            g.fingerprint,
            g.created_at_ms,
            g.expires_at_ms,
            held.map(|h| h.status),
            held.map(|h| h.content_type.as_str()),
            held.map(|h| h.body.as_slice()),
            held.map(|h| h.step_id.as_str()),
        ])?;
    }
    append_audit(tx, &first.run_id, events)?;
    Ok(gates.iter().map(|g| g.id.clone()).collect())
}

fn open_for_request(
    tx: &Connection,
    run_id: &str,
    fingerprint: &str,
    now_ms: i64,
) -> StoreResult<Vec<GateId>> {
    let mut select = tx.prepare_cached(
        "SELECT id FROM gates WHERE run_id = ?1 AND fingerprint = ?2 AND status = 'pending' AND expires_at > ?3 ORDER BY created_at, id",
    )?;
    let ids = select
        .query_map(params![run_id, fingerprint, now_ms], |row| {
            row.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids.into_iter().map(GateId).collect())
}

fn decide(
    tx: &Connection,
    id: &GateId,
    decision: &Decision,
    event: &AuditEvent,
) -> StoreResult<bool> {
    let run_id: Option<String> = tx
        .prepare_cached("SELECT run_id FROM gates WHERE id = ?1")?
        .query_row(params![id.0], |row| row.get(0))
        .map(Some)
        .or_else(|err| match err {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })?;
    let Some(run_id) = run_id else {
        return Err(StoreError::NotFound);
    };
    let changed = tx
        .prepare_cached(
            "UPDATE gates SET status = ?1, decided_at = ?2, decided_by = ?3, reason = ?4 WHERE id = ?5 AND status = 'pending' AND expires_at > ?2",
        )?
        .execute(params![
            decision.status.as_str(),
            decision.at_ms,
            decision.actor,
            decision.reason,
            id.0
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some(limit) = decision.raise_limit {
        tx.prepare_cached("UPDATE runs SET budget_limit_nanos = ?1 WHERE id = ?2")?
            .execute(params![limit.0, run_id])?;
    }
    append_audit(tx, &run_id, std::slice::from_ref(event))?;
    Ok(true)
}

fn consume(
    tx: &Connection,
    run_id: &str,
    ids: &[GateId],
    event: &AuditEvent,
    now_ms: i64,
) -> StoreResult<bool> {
    let mut usable = tx.prepare_cached(
        "SELECT 1 FROM gates WHERE id = ?1 AND run_id = ?2 AND status = ?3 AND consumed_at IS NULL",
    )?;
    for id in ids {
        if !usable.exists(params![id.0, run_id, GateStatus::Approved.as_str()])? {
            return Ok(false);
        }
    }
    let mut mark = tx.prepare_cached("UPDATE gates SET consumed_at = ?1 WHERE id = ?2")?;
    for id in ids {
        mark.execute(params![now_ms, id.0])?;
    }
    append_audit(tx, run_id, std::slice::from_ref(event))?;
    Ok(!ids.is_empty())
}

fn expire(tx: &Connection, now_ms: i64) -> StoreResult<Vec<GateId>> {
    let overdue: Vec<(String, String, String, String)> = tx
        .prepare_cached(
            "SELECT id, run_id, tool, rule FROM gates WHERE status = 'pending' AND expires_at <= ?1 ORDER BY created_at",
        )?
        .query_map(params![now_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut mark = tx.prepare_cached(
        "UPDATE gates SET status = 'expired', decided_at = ?1, decided_by = 'system:expiry' WHERE id = ?2 AND status = 'pending'",
    )?;
    for (id, run_id, tool, rule) in &overdue {
        mark.execute(params![now_ms, id])?;
        let event = AuditEvent {
            kind: "approval.expired",
            actor: "system:expiry".into(),
            data: serde_json::json!({"gate_id": id, "tool": tool, "rule": rule}),
            at_ms: now_ms,
        };
        append_audit(tx, run_id, std::slice::from_ref(&event))?;
    }
    Ok(overdue.into_iter().map(|(id, ..)| GateId(id)).collect())
}
