//! One direction of forwarding with splice(2): socket -> pipe -> socket.
//!
//! glommio 0.9 has no splice and no public wait-for-writable, so the
//! splicing is done with raw non-blocking syscalls and every wait goes
//! through glommio's own read and write paths:
//!
//! - Waiting for the source is a glommio read into a chunk buffer (recv,
//!   then an io_uring poll only if nothing is there). `TcpStream::peek`
//!   would also wait on an O_NONBLOCK socket, but it is an `async fn` over
//!   `&TcpStream` held for the whole wait, while the other direction needs
//!   `&mut` on the same stream to write: both cannot be alive in one task.
//! - The chunk read after a wait is written with glommio (the bytes are
//!   already in user space). If it filled the whole buffer the source is
//!   streaming, and the following bytes are spliced until the source runs
//!   dry; small request/response traffic therefore costs what the copy path
//!   costs (recv + send) and takes no pipe, bulk traffic is spliced.
//! - A full destination (splice returns EAGAIN) is waited for by moving one
//!   chunk from the pipe into the buffer and writing it through glommio,
//!   which waits for POLLOUT; splicing resumes after it.
//!
//! The source is never read while the pipe or the buffer still holds
//! undelivered bytes, so one direction holds at most one pipe plus one
//! buffer. The pipe is borrowed from the pool only for a burst and given
//! back empty, so waiting connections hold no pipe.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use futures_lite::io::{AsyncRead, AsyncWrite};

use super::copy::write_chunk;
use super::forward::{read_chunk, write_zero, ChunkBuf, ForwardError, Meter};
use super::pipe::{Pipe, PipeError, PipePool};

/// Forwards `src` to `dst` until `src` ends, splicing bulk data. Both must
/// be sockets in O_NONBLOCK mode (the socket's flag, not SPLICE_F_NONBLOCK,
/// decides whether splice blocks). Does not shut down `dst`.
pub async fn splice_one_way<R, W>(
    src: &mut R,
    dst: &mut W,
    pipes: &PipePool,
    buf: &mut ChunkBuf,
    meter: &Meter<'_>,
) -> Result<(), ForwardError>
where
    R: AsyncRead + AsRawFd + Unpin,
    W: AsyncWrite + AsRawFd + Unpin,
{
    let src_fd = src.as_raw_fd();
    let dst_fd = dst.as_raw_fd();
    let mut can_splice = true;
    let mut streaming = false;
    loop {
        if streaming && can_splice {
            match pipes.get() {
                Ok(mut pipe) => {
                    if let Burst::Eof = burst(src_fd, dst, dst_fd, &mut pipe, buf, meter).await? {
                        return Ok(());
                    }
                }
                // Every pipe of this core is busy: this chunk goes through
                // the buffer, a later one may find a pipe.
                Err(PipeError::Exhausted(_)) => {}
                // Out of fds: stop trying for this connection.
                Err(PipeError::Create(_)) => can_splice = false,
            }
        }
        let n = read_chunk(src, buf).await.map_err(ForwardError::Read)?;
        if n == 0 {
            return Ok(());
        }
        meter.on_received();
        write_chunk(dst, &buf.get()[..n]).await?;
        meter.on_delivered(n, false);
        streaming = n == buf.size();
    }
}

enum Burst {
    /// The source had nothing more for now; the pipe is empty.
    Dry,
    /// The source reached end of stream; everything was delivered.
    Eof,
}

/// Splices while the source has data.
async fn burst<W>(
    src_fd: RawFd,
    dst: &mut W,
    dst_fd: RawFd,
    pipe: &mut Pipe<'_>,
    buf: &mut ChunkBuf,
    meter: &Meter<'_>,
) -> Result<Burst, ForwardError>
where
    W: AsyncWrite + Unpin,
{
    loop {
        match pipe.fill_from(src_fd) {
            Ok(0) => return Ok(Burst::Eof),
            Ok(_) => {
                meter.on_received();
                drain(pipe, dst, dst_fd, buf, meter).await?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Burst::Dry),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ForwardError::Read(e)),
        }
    }
}

/// Empties the pipe into `dst`.
async fn drain<W>(
    pipe: &mut Pipe<'_>,
    dst: &mut W,
    dst_fd: RawFd,
    buf: &mut ChunkBuf,
    meter: &Meter<'_>,
) -> Result<(), ForwardError>
where
    W: AsyncWrite + Unpin,
{
    while !pipe.is_empty() {
        match pipe.drain_to(dst_fd) {
            Ok(0) => return Err(ForwardError::Write(write_zero())),
            Ok(n) => meter.on_delivered(n, true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let n = pipe.read_into(buf.get()).map_err(ForwardError::Pipe)?;
                if n == 0 {
                    return Err(ForwardError::Pipe(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "pipe holds fewer bytes than spliced into it",
                    )));
                }
                write_chunk(dst, &buf.get()[..n]).await?;
                meter.on_delivered(n, false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ForwardError::Write(e)),
        }
    }
    Ok(())
}
