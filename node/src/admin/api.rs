//! `/api/...` and `/metrics`: each handler reads the node and serializes;
//! the field names are documented in the README.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use ifs_core::proto::PeerRow;
use ifs_node::telemetry::events::Event;
use ifs_node::telemetry::exposition::{OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use ifs_node::telemetry::view::{BandwidthView, Overview};
use serde::Deserialize;

use super::AdminState;

/// Most events one `/api/events` answer carries.
const MAX_EVENTS: usize = 256;

/// `GET /api/overview`.
pub(super) async fn overview(State(s): State<AdminState>) -> Json<Overview> {
    Json(s.node.overview().await)
}

/// `GET /api/peers`: the node table, rows as `ifsnode peers --json`.
pub(super) async fn peers(State(s): State<AdminState>) -> Json<Vec<PeerRow>> {
    Json(s.node.peers())
}

/// Query of `/api/events`.
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    /// Only events with a higher `seq`.
    #[serde(default)]
    after: u64,
    /// At most this many (default and cap 256).
    limit: Option<usize>,
}

/// `GET /api/events?after=SEQ&limit=N`: newest first.
pub(super) async fn events(
    State(s): State<AdminState>,
    Query(q): Query<EventsQuery>,
) -> Json<Vec<Event>> {
    let limit = q.limit.unwrap_or(MAX_EVENTS).min(MAX_EVENTS);
    Json(s.node.events_since(q.after, limit))
}

/// `GET /api/bandwidth`.
pub(super) async fn bandwidth(State(s): State<AdminState>) -> Json<BandwidthView> {
    Json(s.node.bandwidth())
}

/// `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus
/// does), else the Prometheus text format.
pub(super) async fn metrics(State(s): State<AdminState>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let body = s.node.metrics_text(openmetrics).await;
    let kind = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    ([(header::CONTENT_TYPE, kind)], body)
}
