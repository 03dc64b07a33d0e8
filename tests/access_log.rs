//! The access log of the real binary on stdout: lines batched per worker thread must all
//! come out, and promptly once the server is idle.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SITE: &str = r#"
[[sites]]
hosts = ["*"]
[[sites.routes]]
path = "/n"
handler = { type = "respond", body = "ok" }
"#;

/// Sends `count` pipelined requests for `/n?i=0..count` on one connection and reads every
/// response.
async fn pipelined(url: &str, count: usize) {
    let addr = url.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut burst = String::new();
    for i in 0..count {
        burst.push_str(&format!("GET /n?i={i} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    tcp.write_all(burst.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let answered = |seen: &[u8]| seen.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    while answered(&seen) < count {
        let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
            .await
            .expect("responses in time")
            .unwrap();
        assert!(n > 0, "closed after {} responses", answered(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_burst_larger_than_a_batch_logs_every_request() {
    let served = serve_binary(SITE).await;
    // About 90 bytes a line: 1,000 lines are more than one 32 KiB batch. A connection's
    // task may move between worker threads, each with its own batch, so lines may come out
    // of order, but none may be missing or repeated.
    let count = 1000;
    // Read while the requests go in: a full stdout pipe blocks the server's writes.
    let mut stdout = served.stdout;
    let reader = tokio::spawn(async move {
        let mut lines = Vec::with_capacity(count);
        for _ in 0..count {
            lines.push(line_where(&mut stdout, |l| l.contains("GET /n?i=")).await);
        }
        lines
    });
    pipelined(&served.url, count).await;
    let mut logged = Vec::with_capacity(count);
    for line in reader.await.unwrap() {
        let i = line
            .split_once("GET /n?i=")
            .and_then(|(_, rest)| rest.split_once(' '))
            .and_then(|(i, _)| i.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("not a line of this test: {line}"));
        assert!(line.contains("HTTP/1.1\" 200 2 "), "{line}");
        logged.push(i);
    }
    logged.sort_unstable();
    assert_eq!(logged, (0..count).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_line_of_a_lone_request_is_written_without_waiting_for_more() {
    let mut served = serve_binary(SITE).await;
    pipelined(&served.url, 1).await;
    // Nothing else happens on the server: the line must come out on its own (line_where
    // is bounded by STEP).
    let line = line_where(&mut served.stdout, |l| l.contains("GET /n?i=0")).await;
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
}

#[tokio::test]
async fn the_access_log_is_off_when_set_off() {
    let served = serve_binary(&format!("[log]\naccess_log = \"off\"\n{SITE}")).await;
    pipelined(&served.url, 3).await;
    // A graceful stop flushes every batch, so a line logged while off could not hide in one.
    let mut stdout = served.terminate().await;
    let next = tokio::time::timeout(STEP, stdout.next_line()).await;
    assert!(matches!(next, Ok(Ok(None))), "logged while off: {next:?}");
}
