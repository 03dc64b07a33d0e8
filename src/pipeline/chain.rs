//! How stages compose: each middleware gets the request and the rest of the chain, and
//! decides whether and how to call it (Caddy's rule: requests flow down the list, responses
//! flow back up). This is the one way stages are built; there is no second.

use std::sync::Arc;

use http::Request;

use super::{Handler, HandlerFuture};
use crate::body::Body;

/// A middleware stage.
pub trait Middleware: Send + Sync + 'static {
    /// Handles `req`, usually by calling `next.run(req)` and adjusting what comes back.
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture;
}

/// An ordered list of stages in front of a terminal handler.
pub struct Chain {
    stages: Arc<[Arc<dyn Middleware>]>,
    handler: Handler,
}

impl Chain {
    /// `stages` (outermost first) in front of `handler`.
    pub fn new(stages: Vec<Arc<dyn Middleware>>, handler: Handler) -> Self {
        Chain {
            stages: stages.into(),
            handler,
        }
    }

    /// Runs the request through the chain.
    pub fn run(&self, req: Request<Body>) -> HandlerFuture {
        Next {
            stages: Arc::clone(&self.stages),
            index: 0,
            handler: Arc::clone(&self.handler),
        }
        .run(req)
    }
}

/// The rest of a chain, as seen by a stage.
pub struct Next {
    stages: Arc<[Arc<dyn Middleware>]>,
    index: usize,
    handler: Handler,
}

impl Next {
    /// Passes the request to the next stage, or to the handler after the last one.
    pub fn run(self, req: Request<Body>) -> HandlerFuture {
        match self.stages.get(self.index) {
            Some(stage) => {
                let stage = Arc::clone(stage);
                let next = Next {
                    stages: self.stages,
                    index: self.index + 1,
                    handler: self.handler,
                };
                stage.handle(req, next)
            }
            None => (self.handler)(req),
        }
    }
}
