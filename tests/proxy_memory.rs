//! Bodies stream through the proxy with bounded memory: 256 MiB up and 256 MiB down through
//! the real binary, whose peak resident memory (VmHWM) must stay far below that.
#![cfg(target_os = "linux")]

mod common;

use std::process::Stdio;

use bytes::Bytes;
use common::upstream::{self, Kind};
use common::STEP;
use tokio::io::{AsyncBufReadExt, BufReader};

const MIB: u64 = 1 << 20;
/// Far below the 256 MiB that would be held if a body were buffered whole.
const PEAK_LIMIT: u64 = 96 * MIB;

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

#[tokio::test]
async fn large_uploads_and_downloads_stream_with_bounded_memory() {
    let up = upstream::start("a", Kind::Http1).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[limits]\nmax_request_body_size = \"1GiB\"\n[log]\naccess_log = \"off\"\n{}",
        upstream::proxy_site(&up.url())
    );
    std::fs::write(dir.path().join("harrier.toml"), toml).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_harrier"))
        .args(["-l", "http://127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("HARRIER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn harrier");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(STEP, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.to_owned();
            }
        }
        panic!("harrier exited before listening");
    })
    .await
    .expect("listening line");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let total = 256 * MIB;

    let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
    let chunks = (total / chunk.len() as u64) as usize;
    let stream =
        futures_util::stream::iter(std::iter::repeat_n(chunk, chunks).map(Ok::<_, std::io::Error>));
    let upload = client
        .post(format!("{url}/echo"))
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let resp = tokio::time::timeout(STEP * 6, upload)
        .await
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(json["body_len"].as_u64(), Some(total));

    let mut resp = client
        .get(format!("{url}/big?mib={}", total / MIB))
        .send()
        .await
        .unwrap();
    let mut received = 0u64;
    let download = async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            received += chunk.len() as u64;
        }
    };
    tokio::time::timeout(STEP * 6, download).await.unwrap();
    assert_eq!(received, total);

    let peak = peak_rss(pid);
    eprintln!(
        "harrier peak RSS after 2 x 256 MiB through the proxy: {} MiB",
        peak / MIB
    );
    assert!(peak < PEAK_LIMIT, "peak RSS {} MiB", peak / MIB);
    let _ = child.kill().await;
}
