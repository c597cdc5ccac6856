//! `GET /api/v1/outbox` and `POST /api/v1/outbox/{id}/retry`: queued, failed and dead
//! notifications, each receiver's delivery state, and re-queueing one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, Daemon, error};
use crate::time::rfc3339_millis;

/// The most entries one `/api/v1/outbox` answer lists per status.
pub(super) const MAX_OUTBOX_LIMIT: usize = 1_000;

#[derive(Deserialize)]
pub(super) struct OutboxParams {
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/outbox?status=pending|failed|dead`: queued, failed and dead notifications
/// (newest first), and each receiver's delivery state.
pub(super) async fn list_outbox<D: Daemon>(
    State(s): State<AppState<D>>,
    q: Result<Query<OutboxParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use crate::outbox::db::{BLOCKED, EntryStatus};
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let all = [EntryStatus::Pending, EntryStatus::Failed, EntryStatus::Dead];
    let statuses: Vec<EntryStatus> = match q.status.as_deref() {
        None => all.to_vec(),
        Some(name) => match all.into_iter().find(|st| st.as_str() == name) {
            Some(st) => vec![st],
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown status `{name}`: use pending, failed or dead"),
                );
            }
        },
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_OUTBOX_LIMIT);
    let mut entries = Vec::new();
    {
        let db = s.db();
        for st in statuses {
            match db.outbox_entries(st, limit) {
                Ok(list) => entries.extend(list),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.id));
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let due = e.status == EntryStatus::Pending && e.next_attempt_ms != BLOCKED;
            json!({
                "id": e.id,
                "receiver": e.receiver,
                "group": e.group_key,
                "status": e.status.as_str(),
                "attempts": e.attempts,
                "last_error": e.last_error,
                "created": rfc3339_millis(crate::series::Timestamp(e.created_ms)),
                "next_attempt": due.then(|| rfc3339_millis(crate::series::Timestamp(e.next_attempt_ms))),
            })
        })
        .collect();
    let receivers: Vec<Value> = s
        .outbox()
        .receiver_states()
        .into_iter()
        .map(|(name, pending, open)| json!({ "name": name, "pending": pending, "circuit_open": open }))
        .collect();
    axum::Json(json!({ "entries": entries, "receivers": receivers })).into_response()
}

/// `POST /api/v1/outbox/{id}/retry`: puts a failed or dead notification back in the queue.
pub(super) async fn retry_outbox<D: Daemon>(State(s): State<AppState<D>>, Path(id): Path<String>) -> Response {
    use crate::outbox::db::Requeue;
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, format!("`{id}` is not an outbox entry id"));
    };
    let done = s.db().outbox_retry(id, s.now().0);
    match done {
        Ok(Some(Requeue::Requeued)) => {
            s.outbox().requeued();
            axum::Json(json!({ "id": id, "status": "pending" })).into_response()
        }
        Ok(Some(Requeue::NotStopped(st))) => error(
            StatusCode::CONFLICT,
            format!(
                "entry {id} is {}: only failed or dead entries are re-queued",
                st.as_str()
            ),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no outbox entry with id {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
