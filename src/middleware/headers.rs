//! `headers`: set, add and remove request and response headers, with placeholders.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::body::Body;
use crate::config::{HeaderRules, HeadersStage};
use crate::pipeline::template::{Template, Vars};
use crate::pipeline::{client_ip, request_host, request_id, HandlerFuture, Middleware, Next};

/// A header value: fixed at startup, or rendered per request from placeholders.
enum Value {
    Fixed(HeaderValue),
    Template(Template),
}

impl Value {
    fn new(text: &str) -> Result<Value, String> {
        let template = Template::parse(text)?;
        if template.is_literal() {
            let fixed = HeaderValue::from_str(text).map_err(|e| e.to_string())?;
            return Ok(Value::Fixed(fixed));
        }
        Ok(Value::Template(template))
    }

    fn get(&self, vars: Option<&Vars<'_>>) -> Option<HeaderValue> {
        match (self, vars) {
            (Value::Fixed(v), _) => Some(v.clone()),
            (Value::Template(t), Some(vars)) => HeaderValue::from_str(&t.render(vars)).ok(),
            (Value::Template(_), None) => None,
        }
    }
}

/// Compiled header rules for one direction.
struct Rules {
    set: Vec<(HeaderName, Value)>,
    add: Vec<(HeaderName, Value)>,
    remove: Vec<HeaderName>,
}

impl Rules {
    fn new(r: &HeaderRules) -> Result<Rules, String> {
        let compile = |list: &[(HeaderName, String)]| {
            list.iter()
                .map(|(n, v)| Value::new(v).map(|v| (n.clone(), v)))
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

    fn templates(&self) -> impl Iterator<Item = &Template> {
        self.set
            .iter()
            .chain(&self.add)
            .filter_map(|(_, v)| match v {
                Value::Template(t) => Some(t),
                Value::Fixed(_) => None,
            })
    }

    fn apply(&self, headers: &mut HeaderMap, vars: Option<&Vars<'_>>) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            if let Some(v) = value.get(vars) {
                headers.insert(name.clone(), v);
            }
        }
        for (name, value) in &self.add {
            if let Some(v) = value.get(vars) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// The `headers` stage.
pub struct Headers {
    request: Rules,
    response: Arc<Rules>,
    /// The placeholders the values use; `None` when every value is fixed.
    uses: Option<Uses>,
}

/// Which per-request variables some value uses: each is copied out of the request (or
/// generated, for `{request_id}`) only then.
struct Uses {
    client_ip: bool,
    host: bool,
    request_id: bool,
}

impl Headers {
    /// Compiles the stage's options.
    pub fn new(cfg: &HeadersStage) -> Result<Headers, String> {
        let request = Rules::new(&cfg.request)?;
        let response = Rules::new(&cfg.response)?;
        let templates = || request.templates().chain(response.templates());
        let uses = templates().next().is_some().then(|| Uses {
            client_ip: templates().any(Template::uses_client_ip),
            host: templates().any(Template::uses_host),
            request_id: templates().any(Template::uses_request_id),
        });
        Ok(Headers {
            uses,
            request,
            response: Arc::new(response),
        })
    }
}

/// Per-request values for the placeholders header values may use (`{client_ip}`, `{host}`,
/// `{request_id}`), gathered once for both directions; those no value uses stay empty.
struct Owned {
    client_ip: Option<String>,
    host: Option<String>,
    request_id: String,
}

impl Owned {
    fn of(req: &Request<Body>, uses: &Uses) -> Owned {
        let request_id = if uses.request_id {
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map_or_else(request_id, str::to_owned)
        } else {
            String::new()
        };
        Owned {
            client_ip: uses
                .client_ip
                .then(|| client_ip(req).map(|ip| ip.to_string()))
                .flatten(),
            host: uses.host.then(|| request_host(req)).flatten(),
            request_id,
        }
    }

    fn vars(&self) -> Vars<'_> {
        Vars {
            client_ip: self.client_ip.as_deref(),
            host: self.host.as_deref(),
            request_id: &self.request_id,
            path: "",
            query: None,
            captures: &[],
        }
    }
}

impl Middleware for Headers {
    fn handle(&self, mut req: Request<Body>, next: Next) -> HandlerFuture {
        let owned = self.uses.as_ref().map(|uses| Owned::of(&req, uses));
        if !self.request.is_empty() {
            let vars = owned.as_ref().map(Owned::vars);
            self.request.apply(req.headers_mut(), vars.as_ref());
        }
        if self.response.is_empty() {
            // Nothing to do on the way back: no wrapping future.
            return next.run(req);
        }
        let response = Arc::clone(&self.response);
        Box::pin(async move {
            let mut resp = next.run(req).await;
            let vars = owned.as_ref().map(Owned::vars);
            response.apply(resp.headers_mut(), vars.as_ref());
            resp
        })
    }
}
