//! `headers`: set, add and remove request and response headers, with placeholders.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::body::Body;
use crate::config::{HeaderRules, HeadersStage};
use crate::pipeline::template::{Template, Vars};
use crate::pipeline::{client_ip, request_host, request_id, HandlerFuture, Middleware, Next};

/// Compiled header rules for one direction.
struct Rules {
    set: Vec<(HeaderName, Template)>,
    add: Vec<(HeaderName, Template)>,
    remove: Vec<HeaderName>,
}

impl Rules {
    fn new(r: &HeaderRules) -> Result<Rules, String> {
        let compile = |list: &[(HeaderName, String)]| {
            list.iter()
                .map(|(n, v)| Template::parse(v).map(|t| (n.clone(), t)))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Rules {
            set: compile(&r.set)?,
            add: compile(&r.add)?,
            remove: r.remove.clone(),
        })
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    fn apply(&self, headers: &mut HeaderMap, vars: &Vars<'_>) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            if let Ok(v) = HeaderValue::from_str(&value.render(vars)) {
                headers.insert(name.clone(), v);
            }
        }
        for (name, value) in &self.add {
            if let Ok(v) = HeaderValue::from_str(&value.render(vars)) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// The `headers` stage.
pub struct Headers {
    request: Rules,
    response: Arc<Rules>,
}

impl Headers {
    /// Compiles the stage's options.
    pub fn new(cfg: &HeadersStage) -> Result<Headers, String> {
        Ok(Headers {
            request: Rules::new(&cfg.request)?,
            response: Arc::new(Rules::new(&cfg.response)?),
        })
    }
}

/// Per-request values for placeholders, computed once for both directions.
struct Owned {
    client_ip: Option<String>,
    host: Option<String>,
    request_id: String,
    path: String,
    query: Option<String>,
}

impl Owned {
    fn of(req: &Request<Body>) -> Owned {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(request_id, str::to_owned);
        Owned {
            client_ip: client_ip(req).map(|ip| ip.to_string()),
            host: request_host(req),
            request_id,
            path: req.uri().path().to_owned(),
            query: req.uri().query().map(str::to_owned),
        }
    }

    fn vars(&self) -> Vars<'_> {
        Vars {
            client_ip: self.client_ip.clone(),
            host: self.host.as_deref(),
            request_id: &self.request_id,
            path: &self.path,
            query: self.query.as_deref(),
            captures: &[],
        }
    }
}

impl Middleware for Headers {
    fn handle(&self, mut req: Request<Body>, next: Next) -> HandlerFuture {
        let owned = Owned::of(&req);
        if !self.request.is_empty() {
            self.request.apply(req.headers_mut(), &owned.vars());
        }
        let response = Arc::clone(&self.response);
        Box::pin(async move {
            let mut resp = next.run(req).await;
            if !response.is_empty() {
                response.apply(resp.headers_mut(), &owned.vars());
            }
            resp
        })
    }
}
