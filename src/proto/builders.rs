//! hyper connection builders configured once from `[limits]`.

use hyper::server::conn::{http1, http2};
use hyper_util::rt::TokioTimer;

use super::h2_batch::StreamExecutor;

use crate::config::Config;

/// Configured HTTP/1.1 and HTTP/2 builders, shared by all connections.
pub struct Builders {
    /// HTTP/1.1.
    pub h1: http1::Builder,
    /// HTTP/2.
    pub h2: http2::Builder<StreamExecutor>,
}

/// hyper's HTTP/1.1 header array size when `max_headers` is not set.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;
/// HTTP/2 streams refused per connection before the peer is considered abusive (rapid reset).
const MAX_PENDING_RESETS: usize = 20;
/// Stream errors caused by the peer before GOAWAY (CVE-2023-44487 and kin).
const MAX_LOCAL_ERROR_RESETS: usize = 256;

impl Builders {
    /// Builders with harrier's limits.
    pub fn new(config: &Config) -> Self {
        let limits = &config.limits;
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            // Head timeouts are enforced (with a 408) by the connection I/O layer.
            .header_read_timeout(None)
            .keep_alive(true)
            .half_close(false)
            // Room for a maximal head; the exact limits are checked on the wire first.
            .max_buf_size(
                (limits.max_request_line_size + limits.max_request_headers_total_size + 4096)
                    .max(8192),
            );

        if limits.max_request_header_count > HYPER_DEFAULT_MAX_HEADERS {
            // hyper parses at most 100 fields on the stack; more means a heap array per
            // request, so it is only asked for when configured. The exact count is checked
            // on the wire by the head scanner either way.
            h1.max_headers(limits.max_request_header_count);
        }

        let h2l = &limits.http2;
        let mut h2 = http2::Builder::new(StreamExecutor);
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(h2l.max_streams_per_connection)
            .header_table_size(h2l.header_table_size)
            .max_frame_size(h2l.max_frame_size)
            .max_header_list_size(h2l.max_request_header_field_size)
            .initial_connection_window_size(h2l.initial_connection_window_size)
            .initial_stream_window_size(h2l.initial_stream_window_size)
            .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
            .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
            .keep_alive_interval(h2l.keep_alive_ping_delay)
            .keep_alive_timeout(h2l.keep_alive_ping_timeout)
            // RFC 8441: WebSocket over HTTP/2 (extended CONNECT), tunnelled by the proxy.
            .enable_connect_protocol();
        Builders { h1, h2 }
    }
}
