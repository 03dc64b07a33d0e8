//! HTML listings of directories without an index file, for file drops and dev servers.
//!
//! File names are attacker-controlled wherever uploads land, so every name is HTML-escaped
//! in text and percent-encoded in links, and entries that the handler would refuse to serve
//! (hidden, or links out of the root) are left out rather than advertised.

use std::fmt::Write;
use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use percent_encoding::utf8_percent_encode;

use super::resolve::Root;
use super::respond::SEGMENT;

/// Directories with more entries than this are listed in part; the page says so.
pub const MAX_ENTRIES: usize = 10_000;

struct Item {
    name: String,
    dir: bool,
    len: u64,
    modified: Option<SystemTime>,
}

/// Renders the listing of `dir` (canonical), shown as `url_path` (decoded, ends with `/`).
pub fn render(root: &Root, dir: &Path, url_path: &str, hidden_ok: bool) -> io::Result<String> {
    let mut items = Vec::new();
    let mut truncated = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            // Not UTF-8: no URL we accept could name it.
            continue;
        };
        if name.starts_with('.') && !hidden_ok {
            continue;
        }
        let Ok(found) = root.locate(&entry.path(), hidden_ok) else {
            continue;
        };
        if !found.meta.is_dir() && !found.meta.is_file() {
            continue;
        }
        if items.len() == MAX_ENTRIES {
            truncated = true;
            break;
        }
        items.push(Item {
            name,
            dir: found.meta.is_dir(),
            len: found.meta.len(),
            modified: found.meta.modified().ok(),
        });
    }
    items.sort_unstable_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok(html(url_path, &items, truncated))
}

fn html(url_path: &str, items: &[Item], truncated: bool) -> String {
    let title = escape(url_path);
    let mut out = String::with_capacity(512 + items.len() * 160);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Index of {title}</title></head>\n<body>\n<h1>Index of {title}</h1>\n\
         <table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n"
    );
    if url_path != "/" {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for item in items {
        let slash = if item.dir { "/" } else { "" };
        let href = utf8_percent_encode(&item.name, SEGMENT);
        let size = if item.dir {
            "-".to_owned()
        } else {
            item.len.to_string()
        };
        let modified = item
            .modified
            .map(httpdate::fmt_http_date)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{href}{slash}\">{}{slash}</a></td><td>{size}</td><td>{modified}</td></tr>",
            escape(&item.name),
        );
    }
    out.push_str("</table>\n");
    if truncated {
        let _ = writeln!(
            out,
            "<p>Only the first {MAX_ENTRIES} entries are shown.</p>"
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// Escapes text for HTML element content and double-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_names_and_encodes_links() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("<script>.txt"), "12345").unwrap();
        fs::write(dir.path().join("b c.txt"), "").unwrap();
        fs::write(dir.path().join(".secret"), "").unwrap();
        fs::create_dir(dir.path().join("zdir")).unwrap();
        let root = Root::new(dir.path(), false).unwrap();
        let page = render(&root, root.path(), "/<x>/", false).unwrap();
        assert!(page.contains("Index of /&lt;x&gt;/"), "{page}");
        assert!(page.contains("<a href=\"%3Cscript%3E.txt\">&lt;script&gt;.txt</a></td><td>5</td>"));
        assert!(page.contains("<a href=\"b%20c.txt\">b c.txt</a>"));
        assert!(!page.contains("secret"));
        assert!(page.contains("<a href=\"../\">"));
        // Directories first, with a slash; then files by name.
        let z = page.find("zdir/").unwrap();
        assert!(z < page.find("b%20c").unwrap());
        assert!(page.find("%3Cscript").unwrap() < page.find("b%20c").unwrap());
        let shown = render(&root, root.path(), "/", true).unwrap();
        assert!(shown.contains(".secret"));
        assert!(!shown.contains("href=\"../\""));
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_root_are_not_listed() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        let root = Root::new(dir.path(), false).unwrap();
        assert!(!render(&root, root.path(), "/", false)
            .unwrap()
            .contains("escape"));
        let loose = Root::new(dir.path(), true).unwrap();
        assert!(render(&loose, loose.path(), "/", false)
            .unwrap()
            .contains("escape/"));
    }
}
