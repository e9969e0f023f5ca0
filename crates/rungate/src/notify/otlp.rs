//! OTLP export of run traces: when a run closes, its spans (`crate::trace`) go to the configured
//! collector as OTLP/HTTP protobuf (`POST <endpoint>/v1/traces`), in a task graceful shutdown
//! waits for, with a few retries. The message types are `opentelemetry-proto`'s, the protocol's
//! own definitions; the spans are built from the run's record, not recorded live, so an SDK
//! tracer pipeline would add nothing but a second copy.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    self as otlp, ResourceSpans, ScopeSpans, span, status,
};
use prost::Message as _;
use serde_json::Value;

use crate::app::Gateway;
use crate::run::RunId;
use crate::trace::Span;

const ATTEMPTS: u32 = 3;

/// Where traces go: the collector's base URL, or its full `/v1/traces` URL.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// Exports the run's trace in the background, when a collector is configured.
pub fn export_run(gw: &Gateway, run_id: &RunId) {
    let Some(endpoint) = gw.config.otlp_endpoint.clone() else {
        return;
    };
    let (stores, client, run_id) = (
        gw.stores.clone(),
        gw.notifier.client().clone(),
        run_id.clone(),
    );
    gw.tasks.spawn(async move {
        let spans = match crate::trace::load(&stores, &run_id).await {
            Ok(spans) => spans,
            Err(err) => {
                tracing::error!(run_id = %run_id, error = %err, "cannot build the run's trace");
                return;
            }
        };
        let body = request(&spans).encode_to_vec();
        let url = traces_url(&endpoint);
        for attempt in 1..=ATTEMPTS {
            let sent = client
                .post(&url)
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(run_id = %run_id, attempt, status = %r.status(), "OTLP export refused"),
                Err(err) => tracing::warn!(run_id = %run_id, attempt, error = %err, "OTLP export failed"),
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        tracing::error!(run_id = %run_id, "OTLP export given up");
    });
}

/// The spans as one OTLP export request.
pub fn request(spans: &[Span]) -> ExportTraceServiceRequest {
    let resource = Resource {
        attributes: vec![string("service.name", "rungate")],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: "rungate".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope),
                spans: spans.iter().map(span).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn span(s: &Span) -> otlp::Span {
    let nanos = |ms: i64| u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
    let (code, message) = match s.status {
        "ok" => (status::StatusCode::Ok, String::new()),
        other => (status::StatusCode::Error, other.to_owned()),
    };
    let kind = if s.name.starts_with("llm.") {
        span::SpanKind::Client
    } else {
        span::SpanKind::Internal
    };
    otlp::Span {
        trace_id: hex::decode(&s.trace_id).unwrap_or_default(),
        span_id: hex::decode(&s.span_id).unwrap_or_default(),
        parent_span_id: s
            .parent_span_id
            .as_deref()
            .and_then(|p| hex::decode(p).ok())
            .unwrap_or_default(),
        name: s.name.clone(),
        kind: kind as i32,
        start_time_unix_nano: nanos(s.start_ms),
        end_time_unix_nano: nanos(s.end_ms),
        attributes: s
            .attributes
            .iter()
            .filter_map(|(key, value)| attribute(key, value))
            .collect(),
        status: Some(otlp::Status {
            code: code as i32,
            message,
        }),
        ..Default::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// A JSON attribute as an OTLP one; nulls are left out, objects and arrays go as JSON text.
fn attribute(key: &str, value: &Value) -> Option<KeyValue> {
    let value = match value {
        Value::Null => return None,
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        other => any_value::Value::StringValue(other.to_string()),
    };
    Some(KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    })
}
