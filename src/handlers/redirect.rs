//! `redirect`: a status and a `location` built from a template with the route's captures.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode};

use crate::body;
use crate::pipeline::template::{Template, Vars};
use crate::pipeline::{error_response, handler_fn, Handler, RouteCaptures};

/// A handler redirecting to `to` (rendered per request) with `status`.
pub fn redirect(status: StatusCode, to: Template) -> Handler {
    let to = Arc::new(to);
    handler_fn(move |req| {
        let captures = req
            .extensions()
            .get::<RouteCaptures>()
            .map(|c| &c.0[..])
            .unwrap_or(&[]);
        let host = crate::pipeline::request_host(&req);
        let client_ip = crate::pipeline::client_ip(&req).map(|ip| ip.to_string());
        let vars = Vars {
            client_ip: client_ip.as_deref(),
            host: host.as_deref(),
            request_id: "",
            path: req.uri().path(),
            query: req.uri().query(),
            captures,
        };
        let resp = match HeaderValue::from_str(&to.render(&vars)) {
            Ok(location) => {
                let mut resp = Response::new(body::empty());
                *resp.status_mut() = status;
                resp.headers_mut().insert(http::header::LOCATION, location);
                resp
            }
            Err(_) => error_response(StatusCode::BAD_REQUEST),
        };
        std::future::ready(resp)
    })
}
