//! `GET`/`POST /api/v1/silences` and `DELETE /api/v1/silences/{id}`: silences, stored in the
//! database first, then in the daemon's mirror (validation is `silence`'s).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Daemon, MAX_SILENCE_BODY, error};
use crate::silence;
use crate::time::rfc3339_millis;

/// `GET /api/v1/silences`: every stored silence (expired ones until pruned with the
/// history), active first, then pending, then expired, each by end time.
pub(super) async fn list_silences<D: Daemon>(State(s): State<AppState<D>>) -> Response {
    let t = s.now();
    let mut list = match s.db().load_silences() {
        Ok(l) => l,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    list.sort_by_key(|x| (silence::status(x, t), x.ends_at));
    let list: Vec<Value> = list
        .iter()
        .map(|x| {
            json!({
                "id": x.id,
                "matchers": x.matchers,
                "starts_at": rfc3339_millis(x.starts_at),
                "ends_at": rfc3339_millis(x.ends_at),
                "created_by": x.created_by,
                "comment": x.comment,
                "status": silence::status(x, t).as_str(),
            })
        })
        .collect();
    axum::Json(json!({ "silences": list })).into_response()
}

/// `POST /api/v1/silences`: creates a silence, or replaces the one whose `id` the body names.
pub(super) async fn create_silence<D: Daemon>(State(s): State<AppState<D>>, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SILENCE_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_SILENCE_BODY} bytes"),
        );
    };
    let t = s.now();
    let draft = match silence::parse(&bytes, t, fastrand::u128(..)) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = draft.silence.id.clone();
    {
        let mut db = s.db();
        if draft.replaces {
            match db.silence(&id) {
                Ok(Some(_)) => {}
                Ok(None) => return error(StatusCode::NOT_FOUND, format!("no silence with id `{id}`")),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        if let Err(e) = db.save_silence(&draft.silence) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    // Stored first: a silence the daemon mutes with is always one it will still have after
    // a restart.
    s.silences(|list| silence::remember(list, draft.silence, t));
    axum::Json(json!({ "silence_id": id })).into_response()
}

/// `DELETE /api/v1/silences/{id}`: expires the silence now (it stays listed as expired).
pub(super) async fn expire_silence<D: Daemon>(State(s): State<AppState<D>>, Path(id): Path<String>) -> Response {
    let t = s.now();
    let expired = s.db().expire_silence(&id, t);
    match expired {
        Ok(Some(_)) => {
            s.silences(|list| list.retain(|x| x.id != id));
            axum::Json(json!({ "silence_id": id, "status": "expired" })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no silence with id `{id}`")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
