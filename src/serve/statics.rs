//! `/statics/...` on the API listener: the file-system half of `api::statics`. Everything that
//! touches the disk (realpath, open, stat, read) runs on glommio's blocking thread pool, never
//! on the executor thread.
//!
//! Containment is checked on the file actually opened: its real path (from `/proc/self/fd`)
//! must lie inside the real path of `statics_dir`. A symlink inside the directory may point to
//! another place inside it, never outside, and swapping a path component between the check
//! and the open changes nothing.

use super::ShardState;
use crate::api::statics::{self, StaticPath, MAX_FILE_BYTES};
use crate::http::Response;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use tracing::debug;

/// What the disk said about a static path.
#[derive(Debug)]
enum Found {
    File(Vec<u8>),
    /// A directory named without its trailing `/`.
    Directory,
    Missing,
    /// Resolves (through a symlink) outside `statics_dir`.
    Outside,
    TooLarge,
}

/// Answer a `/statics/` request from `statics_dir`.
pub(super) async fn serve(st: &ShardState, path: StaticPath) -> Response {
    if st.cfg.statics_dir.is_empty() {
        return statics::not_found();
    }
    let root = PathBuf::from(&st.cfg.statics_dir);
    let rel = path.relative();
    let found = glommio::executor()
        .spawn_blocking(move || find(&root, &rel))
        .await;
    match found {
        Found::File(body) => statics::file_response(&path, body),
        Found::Directory => path.redirect_to_dir(),
        Found::Missing => statics::not_found(),
        Found::Outside => {
            debug!(path = %path.relative().display(), "static path leaves statics_dir: refused");
            statics::reply(403, "forbidden")
        }
        Found::TooLarge => statics::reply(
            403,
            &format!("file larger than {MAX_FILE_BYTES} bytes is not served"),
        ),
    }
}

/// Look `rel` up below `root` (blocking).
fn find(root: &Path, rel: &Path) -> Found {
    let Ok(root) = root.canonicalize() else {
        return Found::Missing;
    };
    let file = match open_inside(&root, &root.join(rel)) {
        Ok(Some(file)) => file,
        Ok(None) => return Found::Outside,
        Err(_) => return Found::Missing,
    };
    match file.metadata() {
        Ok(meta) if meta.is_dir() => Found::Directory,
        Ok(meta) if !meta.is_file() => Found::Missing,
        Ok(meta) if meta.len() > MAX_FILE_BYTES => Found::TooLarge,
        Ok(_) => read_bounded(file),
        Err(_) => Found::Missing,
    }
}

/// Open `path` read-only; `None` if what was opened lies outside `root`. `O_NONBLOCK` keeps a
/// FIFO from blocking the open (it is then refused as not a regular file).
fn open_inside(root: &Path, path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| path.canonicalize())?;
    Ok(real.starts_with(root).then_some(file))
}

/// Read a regular file, at most `MAX_FILE_BYTES` (it may have grown since the stat).
fn read_bounded(file: File) -> Found {
    let mut body = Vec::new();
    match file.take(MAX_FILE_BYTES + 1).read_to_end(&mut body) {
        Ok(_) if body.len() as u64 > MAX_FILE_BYTES => Found::TooLarge,
        Ok(_) => Found::File(body),
        Err(_) => Found::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh directory tree: `root/` with `a.txt`, `sub/index.html`, `empty/`, links in and
    /// out, and `outside/secret.txt` next to it.
    fn tree(name: &str) -> PathBuf {
        let base =
            std::env::temp_dir().join(format!("shardcast-statics-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(root.join("a.txt"), "hello").unwrap();
        std::fs::write(root.join("sub/index.html"), "<p>sub</p>").unwrap();
        std::fs::write(base.join("outside/secret.txt"), "secret").unwrap();
        symlink("../outside/secret.txt", root.join("escape.txt")).unwrap();
        symlink("../outside", root.join("escape_dir")).unwrap();
        symlink("a.txt", root.join("inside.txt")).unwrap();
        root
    }

    #[test]
    fn finds_files_and_refuses_escapes() {
        let root = tree("find");
        let body = |found: Found| match found {
            Found::File(body) => String::from_utf8(body).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(body(find(&root, Path::new("a.txt"))), "hello");
        assert_eq!(body(find(&root, Path::new("inside.txt"))), "hello");
        assert_eq!(body(find(&root, Path::new("sub/index.html"))), "<p>sub</p>");
        assert!(matches!(find(&root, Path::new("sub")), Found::Directory));
        assert!(matches!(
            find(&root, Path::new("empty/index.html")),
            Found::Missing
        ));
        assert!(matches!(find(&root, Path::new("nope")), Found::Missing));
        assert!(matches!(
            find(&root, Path::new("a.txt/index.html")),
            Found::Missing
        ));
        assert!(matches!(
            find(&root, Path::new("escape.txt")),
            Found::Outside
        ));
        assert!(matches!(
            find(&root, Path::new("escape_dir/secret.txt")),
            Found::Outside
        ));
        assert!(matches!(
            find(&root.join("missing"), Path::new("a.txt")),
            Found::Missing
        ));
        // A root given through a symlink works too (both sides are real paths).
        let base = root.parent().unwrap();
        symlink("root", base.join("alias")).unwrap();
        assert_eq!(body(find(&base.join("alias"), Path::new("a.txt"))), "hello");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn fifos_do_not_block_and_are_not_served() {
        let root = tree("fifo");
        let fifo = root.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        assert!(matches!(find(&root, Path::new("pipe")), Found::Missing));
        let _ = std::fs::remove_dir_all(root.parent().unwrap());
    }
}
