//! Reading one chunk of a file for a response body, at an offset.
//!
//! tokio's `File` sends every read to the blocking pool and copies through a buffer of its
//! own: for a 10 MiB file that is 160 thread hand-offs and an extra copy of every byte. Here
//! a chunk is read with a positional read straight into the buffer that becomes the body
//! chunk. On Linux the read is first tried on the calling thread from the page cache only
//! (`preadv2` with `RWF_NOWAIT`, which never waits for the disk); only what is not cached
//! goes to the blocking pool, as everything does elsewhere. All OS-specific reading is here.

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

/// Up to `len` bytes of `file` from `offset` (fewer near the end, none past it).
pub async fn read_at(file: &Arc<File>, offset: u64, len: usize) -> io::Result<Bytes> {
    #[cfg(target_os = "linux")]
    if let Some(read) = cached::read(file, offset, len) {
        return read;
    }
    let file = Arc::clone(file);
    match tokio::task::spawn_blocking(move || blocking_read(&file, offset, len)).await {
        Ok(read) => read,
        Err(e) => Err(io::Error::other(e)),
    }
}

fn blocking_read(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; len];
    let n = loop {
        match positional_read(file, &mut buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    buf.truncate(n);
    Ok(Bytes::from(buf))
}

#[cfg(unix)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(target_os = "linux")]
mod cached {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::{Bytes, BytesMut};

    /// The kernel refused `RWF_NOWAIT` once (before Linux 4.14, or a file system without
    /// it): every read goes to the blocking pool from then on.
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

    /// The bytes if the page cache holds (the start of) them; `None` when reading would
    /// wait for the disk or the kernel cannot tell.
    pub(super) fn read(file: &File, offset: u64, len: usize) -> Option<io::Result<Bytes>> {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let offset = libc::off_t::try_from(offset).ok()?;
        let mut buf = BytesMut::with_capacity(len);
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        // SAFETY: `iov` describes `len` bytes of `buf`'s spare capacity, which lives past the
        // call; the kernel writes at most `len` bytes there and reads nothing from it.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => None,
                Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                    UNSUPPORTED.store(true, Ordering::Relaxed);
                    None
                }
                _ => Some(Err(e)),
            };
        }
        // SAFETY: the kernel initialised the first `n` bytes (n <= len <= capacity).
        unsafe { buf.set_len(n as usize) };
        Some(Ok(buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_at_offsets_up_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        std::fs::write(&path, &data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        assert_eq!(read_at(&file, 0, 10).await.unwrap(), &data[..10]);
        let mid = read_at(&file, 70_000, 65_536).await.unwrap();
        assert_eq!(mid, &data[70_000..135_536]);
        let tail = read_at(&file, 199_990, 100).await.unwrap();
        assert_eq!(tail, &data[199_990..]);
        assert!(read_at(&file, 200_000, 100).await.unwrap().is_empty());
        // The blocking pool's path gives the same bytes as the page-cache one.
        assert_eq!(blocking_read(&file, 70_000, 65_536).unwrap(), mid);
    }
}
