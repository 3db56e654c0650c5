//! The API key and CORS in front of every route: [`Access`] decides, this layer asks it
//! and applies the answer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, ORIGIN, VARY};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::{Access, EarlyAnswer, RequestHead};

/// The middleware: an early answer (preflight, 401), or the route's response with the
/// CORS headers added.
pub async fn gate(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let origin = headers.get(ORIGIN).map(|v| v.as_bytes().to_vec());
    let head = RequestHead {
        method: req.method().as_str(),
        path: req.uri().path(),
        authorization: headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
        origin: origin.as_deref(),
        request_method: headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .map(HeaderValue::as_bytes),
    };
    if let Some(answer) = access.check(&head) {
        if answer.status >= 400 {
            // Never the header itself: it may hold a key.
            tracing::info!(
                path = head.path,
                status = answer.status,
                "request refused before routing"
            );
        }
        return early_response(answer);
    }
    let mut res = next.run(req).await;
    add_headers(
        res.headers_mut(),
        access.response_headers(origin.as_deref()),
    );
    res
}

fn early_response(answer: EarlyAnswer) -> Response {
    let mut res = Response::new(Body::from(answer.body));
    *res.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::FORBIDDEN);
    add_headers(res.headers_mut(), answer.headers);
    res
}

/// Adds `headers`; a `Vary` joins the one already there rather than replacing it.
fn add_headers(target: &mut HeaderMap, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        let Ok(value) = HeaderValue::from_str(&value) else {
            continue;
        };
        let name = HeaderName::from_static(name);
        if name == VARY {
            target.append(name, value);
        } else {
            target.insert(name, value);
        }
    }
}
