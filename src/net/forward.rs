//! Pieces shared by the splice and copy forwarders of one direction: the
//! error that says which side failed, the byte/activity meter, and the
//! chunk buffer that an idle connection does not hold.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::time::Instant;

use futures_lite::io::AsyncRead;

/// Why one direction stopped before the end of its stream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Reading the source failed (for a socket: the source peer went away).
    #[error("read from source: {0}")]
    Read(#[source] io::Error),
    /// Writing the destination failed (the destination peer went away).
    #[error("write to destination: {0}")]
    Write(#[source] io::Error),
    /// Our own pipe failed; neither peer is to blame.
    #[error("pipe: {0}")]
    Pipe(#[source] io::Error),
}

/// Bytes delivered by one direction, and the tunnel-wide last-activity
/// instant that the idle timer reads.
pub struct Meter<'a> {
    delivered: Cell<u64>,
    spliced: Cell<u64>,
    last_activity: Option<&'a Cell<Instant>>,
    /// When the first byte was delivered (for response-time statistics):
    /// one clock read per direction, not per chunk.
    first_delivery: Cell<Option<Instant>>,
}

impl<'a> Meter<'a> {
    /// `last_activity` is `None` when no idle timeout is armed, which saves
    /// a clock read per chunk.
    pub fn new(last_activity: Option<&'a Cell<Instant>>) -> Self {
        Meter {
            delivered: Cell::new(0),
            spliced: Cell::new(0),
            last_activity,
            first_delivery: Cell::new(None),
        }
    }

    /// Bytes written to the destination so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.get()
    }

    /// Of `delivered`, the bytes that went through a pipe.
    pub fn spliced(&self) -> u64 {
        self.spliced.get()
    }

    pub(crate) fn on_received(&self) {
        if let Some(last) = self.last_activity {
            last.set(Instant::now());
        }
    }

    /// When the first byte went through this direction, if any did.
    pub fn first_delivery(&self) -> Option<Instant> {
        self.first_delivery.get()
    }

    pub(crate) fn on_delivered(&self, n: usize, spliced: bool) {
        if self.delivered.get() == 0 && n > 0 {
            self.first_delivery.set(Some(Instant::now()));
        }
        self.delivered.set(self.delivered.get() + n as u64);
        if spliced {
            self.spliced.set(self.spliced.get() + n as u64);
        }
        self.on_received();
    }
}

/// Buffers kept per thread (= per core) for reuse, so that a buffer given
/// back while a connection waits need not be zeroed again on the next chunk.
const SPARE_BUFFERS: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A `bufsize` buffer taken only while a chunk is in flight: a connection
/// that waits for its peer holds no buffer (as HAProxy's buffers are
/// allocated on demand).
pub struct ChunkBuf {
    buf: Option<Box<[u8]>>,
    size: usize,
}

impl ChunkBuf {
    pub fn new(size: usize) -> Self {
        ChunkBuf {
            buf: None,
            size: size.max(1),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn get(&mut self) -> &mut [u8] {
        let size = self.size;
        self.buf.get_or_insert_with(|| {
            let spare = SPARE.with(|s| s.borrow_mut().pop());
            match spare {
                Some(b) if b.len() == size => b,
                _ => vec![0u8; size].into_boxed_slice(),
            }
        })
    }

    pub fn release(&mut self) {
        if let Some(b) = self.buf.take() {
            SPARE.with(|s| {
                let mut spare = s.borrow_mut();
                if spare.len() < SPARE_BUFFERS {
                    spare.push(b);
                }
            });
        }
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        self.release();
    }
}

/// Reads one chunk into `buf`, giving the buffer back while waiting. With a
/// glommio socket this is a recv(MSG_DONTWAIT) first and an io_uring poll
/// only if nothing is there. The bytes are in `buf.get()[..n]`.
pub(crate) async fn read_chunk<R>(src: &mut R, buf: &mut ChunkBuf) -> io::Result<usize>
where
    R: AsyncRead + Unpin + ?Sized,
{
    poll_fn(|cx| {
        let r = Pin::new(&mut *src).poll_read(cx, buf.get());
        if r.is_pending() {
            buf.release();
        }
        r
    })
    .await
}

/// A non-empty write that the destination took zero bytes of.
pub(crate) fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "destination accepted no bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_buf_is_reused_without_realloc() {
        let mut a = ChunkBuf::new(4096);
        let p = a.get().as_ptr();
        a.release();
        let mut b = ChunkBuf::new(4096);
        assert_eq!(b.get().as_ptr(), p, "spare buffer reused");
        assert_eq!(b.get().len(), 4096);
        let mut c = ChunkBuf::new(100);
        assert_eq!(c.get().len(), 100, "a spare of another size is not used");
    }
}
