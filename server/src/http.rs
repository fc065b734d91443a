//! Plain HTTP routes: health, metrics, node info, and JSON reads of events so `curl` is
//! useful. Every error is an [`ApiError`] with the same JSON shape as an error frame.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kith_protocol::event::{EventId, GroupId, Timestamp};
use kith_protocol::frame::{ErrorCode, Filter, WS_PATH};
use kith_protocol::view::EventView;
use serde::Deserialize;
use serde_json::json;

use crate::node::{Rejection, SharedNode};

/// Path of the node-information document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/kith";

/// The node's routes, WebSocket included.
pub fn router(node: SharedNode) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(WELL_KNOWN_PATH, get(node_info))
        .route("/events/{id}", get(event_by_id))
        .route("/groups/{group}/events", get(group_events))
        .route("/groups/{group}/state", get(group_state))
        .route(WS_PATH, get(crate::ws::upgrade))
        .route(
            crate::federation::frame::FEDERATION_PATH,
            get(crate::federation::connect::upgrade),
        )
        .with_state(node)
}

/// An HTTP error: status, code and plain message, as `{"error":{"code":…,"message":…}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    rejection: Rejection,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            rejection: Rejection::new(code, message),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            rejection,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.rejection.code, "message": self.rejection.message}});
        (self.status, Json(body)).into_response()
    }
}

async fn health(State(node): State<SharedNode>) -> Result<Json<serde_json::Value>, ApiError> {
    let events = node.blocking(|s| s.event_count()).await?;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "events": events,
    })))
}

async fn metrics(State(node): State<SharedNode>) -> Result<Response, ApiError> {
    let events = node.blocking(|s| s.event_count()).await?;
    let gauges = [
        ("events", "Events in the store.", events),
        (
            "live_listeners",
            "Connections listening for live events.",
            node.hub.listeners() as u64,
        ),
    ];
    let mut text = node.metrics.render(&gauges);
    let queues = node.blocking(|s| s.outbox_stats()).await?;
    text.push_str(&crate::metrics::render_outbox(
        &queues,
        crate::node::now().0,
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn node_info(State(node): State<SharedNode>) -> Json<serde_json::Value> {
    Json(json!({
        "software": "kithd",
        "version": env!("CARGO_PKG_VERSION"),
        "node": node.key.public_key(),
        "url": node.public_url,
        "protocol_versions": kith_protocol::SUPPORTED_VERSIONS,
        "limits": node.config.limits,
        "open_registration": node.config.open_registration,
    }))
}

async fn event_by_id(
    State(node): State<SharedNode>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let id: EventId = parse_path(&id, "an event id")?;
    let groups = std::sync::Arc::clone(&node.groups);
    let found = node
        .blocking(move |s| match s.get_event(&id)? {
            Some(e) => groups.may_read(&e, None).map(|ok| Some((e, ok))),
            None => Ok(None),
        })
        .await?;
    match found {
        Some((_, false)) => Err(members_only()),
        Some((event, true)) => Ok(Json(EventView::from(&event))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("this node holds no event {id}"),
        )),
    }
}

/// Query parameters of `GET /groups/{group}/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupQuery {
    limit: Option<u32>,
    since: Option<u64>,
    until: Option<u64>,
}

async fn group_events(
    State(node): State<SharedNode>,
    Path(group): Path<String>,
    Query(q): Query<GroupQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let group: GroupId = parse_path(&group, "a group id")?;
    let limits = &node.config.connections;
    let limit = q.limit.unwrap_or(100).min(limits.max_stored_results) as usize;
    let filter = Filter {
        groups: Some(vec![group]),
        since: q.since.map(Timestamp),
        until: q.until.map(Timestamp),
        ..Filter::default()
    };
    let max_scan = limits.max_scan;
    let groups = std::sync::Arc::clone(&node.groups);
    let found = node
        .blocking(move |s| {
            // Load the group first: whether it is private is known once it is loaded.
            if groups.hosts(&group)?.is_some() && groups.is_private(&group) {
                return Ok(None);
            }
            s.query(&filter, limit, max_scan).map(Some)
        })
        .await?;
    let Some(events) = found else {
        return Err(members_only());
    };
    let views: Vec<EventView> = events.iter().map(EventView::from).collect();
    Ok(Json(json!({ "group": group, "events": views })))
}

fn members_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::MembersOnly,
        "this group is private: its members read it over the WebSocket API after logging in",
    )
}

async fn group_state(
    State(node): State<SharedNode>,
    Path(group): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let group: GroupId = parse_path(&group, "a group id")?;
    let groups = std::sync::Arc::clone(&node.groups);
    let now = crate::node::now();
    let view = node
        .blocking(move |_| {
            let view = groups.view(&group, now)?;
            Ok(view.map(|v| (v, groups.is_private(&group))))
        })
        .await?;
    match view {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownGroup,
            format!("this node holds no group {group}"),
        )),
        Some((_, true)) => Err(members_only()),
        Some((v, false)) => Ok(Json(v)),
    }
}

/// Parses an id from the URL path, or says plainly what was wrong.
fn parse_path<T>(text: &str, what: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadFrame,
            format!("'{text}' is not {what}: {e}"),
        )
    })
}
