//! Per-core pool of kernel pipes for splice(2).
//!
//! A pipe is only borrowed while bytes are actually being spliced, so idle
//! connections hold no pipe and a core needs about as many pipes as it has
//! connections moving bulk data at the same instant. The pool is per core
//! (`!Send`, `Cell`/`RefCell` only): no locking on the data path.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// `maxpipes` pipes are already open on this core (HAProxy: "when no
    /// pipe is available, splicing is simply not used").
    #[error("all {0} pipes of this core are in use")]
    Exhausted(usize),
    /// pipe2(2) failed, typically EMFILE/ENFILE.
    #[error("cannot create pipe: {0}")]
    Create(#[source] io::Error),
}

/// Counters for observability and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipeStats {
    /// Pipes created since the pool was made.
    pub created: u64,
    /// Pipes waiting in the pool.
    pub idle: usize,
    /// Pipes currently lent out.
    pub in_use: usize,
}

struct RawPipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Capacity the kernel actually granted (F_SETPIPE_SZ may refuse).
    capacity: usize,
}

/// Pool of non-blocking pipes for one core.
pub struct PipePool {
    idle: RefCell<Vec<RawPipe>>,
    pipesize: usize,
    maxpipes: usize,
    in_use: Cell<usize>,
    created: Cell<u64>,
}

impl PipePool {
    /// `pipesize`: requested pipe capacity (HAProxy `tune.pipesize`; 0 keeps
    /// the kernel default). `maxpipes`: cap on pipes open on this core, idle
    /// plus lent out (HAProxy `maxpipes`).
    pub fn new(pipesize: usize, maxpipes: usize) -> Self {
        PipePool {
            idle: RefCell::new(Vec::new()),
            pipesize,
            maxpipes,
            in_use: Cell::new(0),
            created: Cell::new(0),
        }
    }

    /// Lends a pipe; it comes back when the returned `Pipe` is dropped empty.
    pub fn get(&self) -> Result<Pipe<'_>, PipeError> {
        let raw = match self.idle.borrow_mut().pop() {
            Some(raw) => raw,
            None => {
                if self.in_use.get() >= self.maxpipes {
                    return Err(PipeError::Exhausted(self.maxpipes));
                }
                let raw = create_pipe(self.pipesize).map_err(PipeError::Create)?;
                self.created.set(self.created.get() + 1);
                raw
            }
        };
        self.in_use.set(self.in_use.get() + 1);
        Ok(Pipe {
            read_fd: raw.read.as_raw_fd(),
            write_fd: raw.write.as_raw_fd(),
            capacity: raw.capacity,
            raw: Some(raw),
            len: 0,
            pool: self,
        })
    }

    pub fn stats(&self) -> PipeStats {
        PipeStats {
            created: self.created.get(),
            idle: self.idle.borrow().len(),
            in_use: self.in_use.get(),
        }
    }

    fn put_back(&self, raw: RawPipe, empty: bool) {
        self.in_use.set(self.in_use.get() - 1);
        // A pipe with bytes left would leak them into the next connection;
        // closing it is the only way to empty it without a syscall loop.
        if empty && self.idle.borrow().len() < self.maxpipes {
            self.idle.borrow_mut().push(raw);
        }
    }
}

fn create_pipe(pipesize: usize) -> io::Result<RawPipe> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, both fds are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut capacity = -1;
    if pipesize > 0 {
        let size = libc::c_int::try_from(pipesize).unwrap_or(libc::c_int::MAX);
        // SAFETY: plain fcntl on an fd we own.
        capacity = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    }
    if capacity < 0 {
        // Refused (over pipe-max-size or the per-user pipe quota) or not
        // asked: keep the pipe at whatever size the kernel gave it.
        // SAFETY: plain fcntl on an fd we own.
        capacity = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if capacity < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(RawPipe {
        read,
        write,
        capacity: capacity as usize,
    })
}

/// A pipe lent by a `PipePool`. It keeps count of the bytes it holds so that
/// dropping it can decide between recycling (empty) and closing (not empty).
pub struct Pipe<'p> {
    /// Owns the fds; `None` only inside `drop`.
    raw: Option<RawPipe>,
    read_fd: RawFd,
    write_fd: RawFd,
    capacity: usize,
    len: usize,
    pool: &'p PipePool,
}

const SPLICE_FLAGS: libc::c_uint = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;

impl Pipe<'_> {
    /// Bytes the kernel lets this pipe hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes spliced in and not yet taken out.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// splice(2) up to the free capacity from `src` (a socket that must be
    /// O_NONBLOCK) into the pipe. `Ok(0)` is end of stream.
    pub fn fill_from(&mut self, src: RawFd) -> io::Result<usize> {
        let room = self.capacity() - self.len;
        let n = splice(src, self.write_fd, room)?;
        self.len += n;
        Ok(n)
    }

    /// splice(2) the pipe's content into `dst` (an O_NONBLOCK socket).
    pub fn drain_to(&mut self, dst: RawFd) -> io::Result<usize> {
        let n = splice(self.read_fd, dst, self.len)?;
        self.len -= n;
        Ok(n)
    }

    /// Reads pipe content into `buf`, for when the destination must be
    /// written through the executor instead of spliced.
    pub fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.len);
        // SAFETY: buf is valid for `want` bytes of writes.
        let n = unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), want) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len -= n as usize;
        Ok(n as usize)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets are required for pipes and sockets; the fds are
    // borrowed for the duration of the call.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            SPLICE_FLAGS,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Drop for Pipe<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.pool.put_back(raw, self.len == 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pipe(pipe: &Pipe<'_>, data: &[u8]) {
        let fd = pipe.write_fd;
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        assert_eq!(n as usize, data.len());
    }

    #[test]
    fn empty_pipe_is_recycled() {
        let pool = PipePool::new(128 * 1024, 4);
        let pipe = pool.get().unwrap();
        assert!(pipe.capacity() >= 64 * 1024);
        assert_eq!(pool.stats().in_use, 1);
        drop(pipe);
        assert_eq!(
            pool.stats(),
            PipeStats {
                created: 1,
                idle: 1,
                in_use: 0
            }
        );
        let _again = pool.get().unwrap();
        assert_eq!(pool.stats().created, 1, "the idle pipe is reused");
    }

    #[test]
    fn pipe_with_bytes_is_closed_not_recycled() {
        let pool = PipePool::new(0, 4);
        let mut pipe = pool.get().unwrap();
        write_pipe(&pipe, b"leftover");
        // Account the bytes as if spliced in.
        pipe.len = 8;
        drop(pipe);
        assert_eq!(pool.stats().idle, 0);
        assert_eq!(pool.stats().in_use, 0);
        let mut fresh = pool.get().unwrap();
        assert_eq!(pool.stats().created, 2);
        let mut buf = [0u8; 8];
        // The new pipe is really empty: a non-blocking read finds nothing.
        fresh.len = 8;
        let err = fresh.read_into(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn read_into_takes_what_was_put() {
        let pool = PipePool::new(0, 1);
        let mut pipe = pool.get().unwrap();
        write_pipe(&pipe, b"hello");
        pipe.len = 5;
        let mut buf = [0u8; 16];
        assert_eq!(pipe.read_into(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert!(pipe.is_empty());
    }

    #[test]
    fn maxpipes_caps_open_pipes() {
        let pool = PipePool::new(0, 2);
        let a = pool.get().unwrap();
        let _b = pool.get().unwrap();
        assert!(matches!(pool.get(), Err(PipeError::Exhausted(2))));
        drop(a);
        assert!(pool.get().is_ok());
    }
}
