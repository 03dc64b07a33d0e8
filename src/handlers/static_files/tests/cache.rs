//! The in-memory cache as the handler uses it.

use std::time::Duration;

use http::StatusCode;

use super::site;

#[tokio::test]
async fn fresh_hits_do_not_touch_the_disk() {
    let s = site(&[("a.txt", b"cached"), ("big.bin", &[1u8; 4096])], |_| {});
    assert_eq!(s.get("/a.txt").await.text(), "cached");
    std::fs::remove_file(s.path("a.txt")).unwrap();
    let r = s.get("/a.txt").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "cached"));
    assert_eq!(s.files.cache.stats(), (1, 6));
    // A large file is cached as metadata only; it is opened per request, and a file that
    // vanished is a 404 (and leaves the cache).
    assert_eq!(s.get("/big.bin").await.body.len(), 4096);
    assert_eq!(s.files.cache.stats(), (2, 6));
    std::fs::remove_file(s.path("big.bin")).unwrap();
    assert_eq!(s.get("/big.bin").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stale_hits_revalidate_and_reload_changes() {
    let s = site(&[("a.txt", b"one")], |c| {
        c.cache.revalidate_after = Duration::ZERO
    });
    let first = s.get("/a.txt").await;
    assert_eq!(first.text(), "one");
    std::fs::write(s.path("a.txt"), "second").unwrap();
    let r = s.get("/a.txt").await;
    assert_eq!(r.text(), "second");
    assert_eq!(r.header("content-length"), "6");
    assert_ne!(r.header("etag"), first.header("etag"));
    std::fs::remove_file(s.path("a.txt")).unwrap();
    assert_eq!(s.get("/a.txt").await.status, StatusCode::NOT_FOUND);
    // Negative answers are revalidated too.
    std::fs::write(s.path("a.txt"), "back").unwrap();
    assert_eq!(s.get("/a.txt").await.text(), "back");
}

#[tokio::test]
async fn a_large_file_changed_under_the_cache_is_described_as_opened() {
    let s = site(&[("big.txt", &[b'a'; 2000])], |_| {});
    let first = s.get("/big.txt").await;
    assert_eq!(first.body.len(), 2000);
    std::fs::write(s.path("big.txt"), vec![b'b'; 3000]).unwrap();
    let r = s.get("/big.txt").await;
    assert_eq!(r.body.len(), 3000);
    assert_eq!(r.header("content-length"), "3000");
    assert_ne!(r.header("etag"), first.header("etag"));
}

#[tokio::test]
async fn zero_max_file_size_disables_the_cache() {
    let s = site(&[("a.txt", b"x")], |c| c.cache.max_file_size = 0);
    assert_eq!(s.get("/a.txt").await.text(), "x");
    assert_eq!(s.files.cache.stats(), (0, 0));
    std::fs::remove_file(s.path("a.txt")).unwrap();
    assert_eq!(s.get("/a.txt").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn content_stays_within_the_budget() {
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("f{i}"), vec![b'x'; 100]))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let s = site(&refs, |c| {
        c.cache.max_file_size = 1000;
        c.cache.max_total_size = 500;
    });
    for (name, _) in &files {
        assert_eq!(s.get(&format!("/{name}")).await.body.len(), 100);
    }
    let (_, bytes) = s.files.cache.stats();
    assert!(bytes <= 500, "{bytes}");
    // Evicted entries are simply loaded again.
    assert_eq!(s.get("/f0").await.body.len(), 100);
}

#[tokio::test]
async fn not_found_is_cached_briefly() {
    let s = site(&[], |_| {});
    assert_eq!(s.get("/later.txt").await.status, StatusCode::NOT_FOUND);
    std::fs::write(s.path("later.txt"), "now").unwrap();
    // Within revalidate_after the cached 404 stands, as with nginx's open_file_cache_errors.
    assert_eq!(s.get("/later.txt").await.status, StatusCode::NOT_FOUND);
    let fresh = site(&[], |c| c.cache.revalidate_after = Duration::ZERO);
    assert_eq!(fresh.get("/later.txt").await.status, StatusCode::NOT_FOUND);
    std::fs::write(fresh.path("later.txt"), "now").unwrap();
    assert_eq!(fresh.get("/later.txt").await.text(), "now");
}

#[tokio::test]
async fn concurrent_requests_share_the_cache() {
    let s = std::sync::Arc::new(site(&[("a.txt", b"shared")], |_| {}));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.get("/a.txt").await.text() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "shared");
    }
    assert_eq!(s.files.cache.stats().0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_file_make_one_disk_lookup() {
    let s = std::sync::Arc::new(site(&[("a.txt", b"once"), ("b.txt", b"b")], |_| {}));
    let requests: Vec<_> = (0..32)
        .map(|i| {
            let s = std::sync::Arc::clone(&s);
            let path = if i % 8 == 7 { "/b.txt" } else { "/a.txt" };
            tokio::spawn(async move { s.get(path).await })
        })
        .collect();
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
    }
    // One lookup per file, however the 32 requests interleaved.
    assert_eq!(s.files.disk_lookups(), 2);
    // Without a cache nothing waits: every request looks for itself.
    let uncached = site(&[("a.txt", b"x")], |c| c.cache.max_file_size = 0);
    for _ in 0..3 {
        assert_eq!(uncached.get("/a.txt").await.status, StatusCode::OK);
    }
    assert_eq!(uncached.files.disk_lookups(), 3);
}
