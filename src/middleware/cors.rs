//! `cors`: cross-origin resource sharing, as the Fetch standard describes it.
//!
//! A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here and
//! never reaches the handler: 204 with the allow headers when the origin, method and headers
//! are allowed, else 403 without CORS headers. The browser would fail a preflight without
//! allow headers anyway; answering 403 instead of passing it on keeps OPTIONS away from
//! handlers not written for it and makes the refusal visible in the access log. Other
//! requests from allowed origins get Access-Control-Allow-Origin on the response; requests
//! from other origins pass through without CORS headers.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::config::CorsStage;
use crate::pipeline::{error_response, HandlerFuture, Middleware, Next};

/// The `cors` stage.
pub struct Cors {
    inner: Arc<Inner>,
}

struct Inner {
    any_origin: bool,
    /// Exact origins, lowercase.
    exact: Vec<String>,
    /// `("https://", ".example.com")` for `https://*.example.com`.
    wildcard: Vec<(String, String)>,
    methods: Vec<Method>,
    allow_methods: HeaderValue,
    any_header: bool,
    headers: Vec<String>,
    allow_headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

impl Cors {
    /// Builds the stage from its options.
    pub fn new(cfg: &CorsStage) -> Result<Cors, String> {
        let value =
            |list: &[&str]| HeaderValue::from_str(&list.join(", ")).map_err(|e| e.to_string());
        let listed = |list: &[String]| -> Result<Option<HeaderValue>, String> {
            let names: Vec<&str> = list.iter().map(String::as_str).collect();
            Ok(if names.is_empty() {
                None
            } else {
                Some(value(&names)?)
            })
        };
        let mut exact = Vec::new();
        let mut wildcard = Vec::new();
        for origin in cfg.allowed_origins.iter().filter(|o| *o != "*") {
            match origin.split_once("://*.") {
                Some((scheme, domain)) => {
                    wildcard.push((format!("{scheme}://"), format!(".{domain}")))
                }
                None => exact.push(origin.clone()),
            }
        }
        let methods: Vec<&str> = cfg.allowed_methods.iter().map(Method::as_str).collect();
        let any_header = cfg.allowed_headers.iter().any(|h| h == "*");
        Ok(Cors {
            inner: Arc::new(Inner {
                any_origin: cfg.allowed_origins.iter().any(|o| o == "*"),
                exact,
                wildcard,
                methods: cfg.allowed_methods.clone(),
                allow_methods: value(&methods)?,
                any_header,
                headers: cfg.allowed_headers.clone(),
                allow_headers: listed(&cfg.allowed_headers)?,
                expose: listed(&cfg.exposed_headers)?,
                credentials: cfg.allow_credentials,
                max_age: HeaderValue::from(cfg.max_age.as_secs()),
            }),
        })
    }
}

impl Middleware for Cors {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        let inner = Arc::clone(&self.inner);
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .filter(|o| inner.allows(o.as_bytes()))
            .cloned();
        let preflight = req.method() == Method::OPTIONS
            && req.headers().contains_key(header::ORIGIN)
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            let resp = match origin {
                Some(origin) => inner.preflight(origin, req.headers()),
                None => error_response(StatusCode::FORBIDDEN),
            };
            return Box::pin(std::future::ready(resp));
        }
        Box::pin(async move {
            let mut resp = next.run(req).await;
            let headers = resp.headers_mut();
            if inner.varies() {
                // The answer depends on Origin, also when it is refused or absent: caches
                // must not serve one origin's response to another.
                headers.append(header::VARY, HeaderValue::from_static("origin"));
            }
            if let Some(origin) = origin {
                inner.allow_origin(headers, origin);
                if let Some(expose) = &inner.expose {
                    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
                }
            }
            resp
        })
    }
}

impl Inner {
    fn allows(&self, origin: &[u8]) -> bool {
        if self.any_origin {
            return true;
        }
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        // Compared ignoring ASCII case (the configured origins are lowercase), so that no
        // lowercase copy is made per request.
        self.exact.iter().any(|o| o.eq_ignore_ascii_case(origin))
            || self.wildcard.iter().any(|(scheme, domain)| {
                strip_prefix_ignore_case(origin, scheme).is_some_and(|host| {
                    let cut = host.len().saturating_sub(domain.len());
                    cut > 0
                        && host
                            .get(cut..)
                            .is_some_and(|d| d.eq_ignore_ascii_case(domain))
                        && !host[..cut].contains(['/', ':', '@'])
                })
            })
    }

    /// Whether Access-Control-Allow-Origin changes with the request's Origin.
    fn varies(&self) -> bool {
        !self.any_origin || self.credentials
    }

    fn allow_origin(&self, headers: &mut HeaderMap, origin: HeaderValue) {
        // With credentials the Fetch spec refuses "*": the origin must be echoed.
        let value = if self.varies() {
            origin
        } else {
            HeaderValue::from_static("*")
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The answer to a preflight from an allowed origin: 204, or 403 when it asks for a
    /// method or headers that are not allowed.
    fn preflight(&self, origin: HeaderValue, req: &HeaderMap) -> Response<Body> {
        let method = req
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        // Safelisted methods need no permission (Fetch "CORS-safelisted method").
        let method_ok = method.is_some_and(|m| {
            self.methods.contains(&m) || [Method::GET, Method::HEAD, Method::POST].contains(&m)
        });
        let asked = req
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        let headers_ok = self.any_header || asked.iter().all(|h| self.headers.contains(h));
        if !(method_ok && headers_ok) {
            return error_response(StatusCode::FORBIDDEN);
        }
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        self.allow_origin(h, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        );
        let allow_headers = if self.any_header && self.credentials {
            // "*" is literal with credentials: name what was asked for.
            HeaderValue::from_str(&asked.join(", "))
                .ok()
                .filter(|_| !asked.is_empty())
        } else {
            self.allow_headers.clone()
        };
        if let Some(value) = allow_headers {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        h.append(
            header::VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        resp
    }
}

/// `text` without `prefix`, the prefix matched ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_ignoring_case() {
        let cfg = CorsStage {
            allowed_origins: vec!["https://app.example".into(), "https://*.example.com".into()],
            allowed_methods: vec![Method::GET],
            allowed_headers: Vec::new(),
            exposed_headers: Vec::new(),
            allow_credentials: false,
            max_age: std::time::Duration::from_secs(1),
        };
        let cors = Cors::new(&cfg).unwrap();
        let allows = |o: &str| cors.inner.allows(o.as_bytes());
        assert!(allows("https://app.example"));
        assert!(allows("HTTPS://App.Example"));
        assert!(!allows("https://app.example:8443"));
        assert!(allows("https://a.b.example.com"));
        assert!(allows("Https://A.EXAMPLE.COM"));
        assert!(!allows("https://example.com"));
        assert!(!allows("https://.example.com.evil"));
        assert!(!allows("http://a.example.com"));
        assert!(!allows("https://evil.test/x.example.com"));
        assert!(!allows("https://u@a.example.com"));
        // The cut between subdomain and domain falls inside a character.
        assert!(!allows("https://ééééééx"));
        assert!(!cors.inner.allows(b"https://\xff.example.com"));
    }
}
