//! `redirect`: a status and a `location` built from a template with the route's captures.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode};

use crate::body;
use crate::pipeline::template::{Template, Vars};
use crate::pipeline::{
    client_ip, error_response, handler_fn, request_host, Handler, RouteCaptures,
};

/// A handler redirecting to `to` (rendered per request) with `status`.
pub fn redirect(status: StatusCode, to: Template) -> Handler {
    // The host and client address are copied out of the request only for a target that
    // uses them.
    let (needs_host, needs_client_ip) = (to.uses_host(), to.uses_client_ip());
    let to = Arc::new(to);
    handler_fn(move |req| {
        let captures = req
            .extensions()
            .get::<RouteCaptures>()
            .map_or(&[][..], |c| &c.0[..]);
        let host = needs_host.then(|| request_host(&req)).flatten();
        let client_ip = needs_client_ip
            .then(|| client_ip(&req).map(|ip| ip.to_string()))
            .flatten();
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
