//! No request reads outside the root, or a hidden file, in any encoding.

use http::StatusCode;

use super::{site, Site};
use crate::handlers::static_files::StaticFiles;

/// A directory outside any root, holding `secret.txt`.
fn secret_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOP SECRET").unwrap();
    dir
}

/// A root inside a parent that holds a secret next to it, so `..` would find it.
fn jailed() -> Site {
    let parent = secret_dir();
    let root = parent.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("ok.txt"), "ok").unwrap();
    let files = StaticFiles::new(&super::config(&root), true).unwrap();
    Site {
        _dir: parent,
        root,
        files,
    }
}

#[tokio::test]
async fn traversal_in_every_encoding_is_refused() {
    let s = jailed();
    assert_eq!(s.get("/ok.txt").await.body, "ok");
    let attempts = [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%ae%c0%ae%c0%afsecret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/ok.txt%00.png",
        "/ok.txt/../../secret.txt",
        "/./ok.txt",
        "/%",
        "/a%zz",
        "/%ff",
    ];
    for uri in attempts {
        let r = s.get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(!r.text().contains("SECRET"), "{uri}");
    }
}

#[tokio::test]
async fn absolute_form_cannot_smuggle_a_path() {
    let s = jailed();
    let r = s.get("http://h/%2e%2e/secret.txt").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn hidden_files_are_404_unless_allowed() {
    let files: &[(&str, &[u8])] = &[
        (".env", b"KEY"),
        (".git/config", b"x"),
        ("a/.htpasswd", b"x"),
        (".well-known/acme-challenge/tok", b"proof"),
        (".well-known/.private", b"x"),
    ];
    let s = site(files, |_| {});
    for uri in [
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/.git/",
        "/.git",
        "/a/.htpasswd",
        "/.well-known/.private",
    ] {
        let r = s.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    assert_eq!(s.get("/.well-known/acme-challenge/tok").await.body, "proof");
    let open = site(files, |c| c.serve_hidden_files = true);
    assert_eq!(open.get("/.env").await.body, "KEY");
    assert_eq!(open.get("/a/.htpasswd").await.status, StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_are_404_unless_followed() {
    use std::os::unix::fs::symlink;
    let outside = secret_dir();
    let make = |follow: bool| {
        let s = site(&[("real.txt", b"real"), (".env", b"KEY")], |c| {
            c.follow_symlinks = follow
        });
        symlink(outside.path().join("secret.txt"), s.path("leak.txt")).unwrap();
        symlink(outside.path(), s.path("outdir")).unwrap();
        symlink(s.path("real.txt"), s.path("inside.txt")).unwrap();
        symlink(s.path(".env"), s.path("env.txt")).unwrap();
        symlink(s.path("loop"), s.path("loop")).unwrap();
        s
    };
    let strict = make(false);
    for uri in [
        "/leak.txt",
        "/outdir/secret.txt",
        "/outdir/",
        "/env.txt",
        "/loop",
    ] {
        let r = strict.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!r.text().contains("SECRET"));
    }
    assert_eq!(strict.get("/inside.txt").await.body, "real");
    let loose = make(true);
    assert_eq!(loose.get("/leak.txt").await.body, "TOP SECRET");
    assert_eq!(loose.get("/outdir/secret.txt").await.body, "TOP SECRET");
    // Following links never unhides a hidden file.
    assert_eq!(loose.get("/env.txt").await.status, StatusCode::NOT_FOUND);
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_swapped_in_after_caching_is_noticed_on_revalidation() {
    let outside = secret_dir();
    let s = site(&[("f.txt", b"fine")], |c| {
        c.cache.revalidate_after = std::time::Duration::ZERO
    });
    assert_eq!(s.get("/f.txt").await.body, "fine");
    std::fs::remove_file(s.path("f.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), s.path("f.txt")).unwrap();
    assert_eq!(s.get("/f.txt").await.status, StatusCode::NOT_FOUND);
}
