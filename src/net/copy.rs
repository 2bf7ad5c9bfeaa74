//! One direction of forwarding through a user-space buffer: for streams that
//! cannot splice (TLS) and for `tune.splice = false`.

use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::forward::{read_chunk, ChunkBuf, ForwardError, Meter};

/// Moves bytes from `src` to `dst` until `src` reaches end of stream, one
/// `buf`-sized chunk at a time: a chunk is fully written before the next is
/// read, so the connection never holds more than one buffer. Does not close
/// or shut down `dst`; the caller decides how to end the stream.
pub async fn copy_one_way<R, W>(
    src: &mut R,
    dst: &mut W,
    buf: &mut ChunkBuf,
    meter: &Meter<'_>,
) -> Result<(), ForwardError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    loop {
        let n = read_chunk(src, buf).await.map_err(ForwardError::Read)?;
        if n == 0 {
            buf.release();
            return Ok(());
        }
        meter.on_received();
        write_chunk(dst, &buf.get()[..n]).await?;
        meter.on_delivered(n, false);
    }
}

/// write_all + flush: flushing is free on a socket and required for a
/// stream that buffers (TLS), or the chunk would sit in its buffer.
pub(crate) async fn write_chunk<W>(dst: &mut W, bytes: &[u8]) -> Result<(), ForwardError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    dst.write_all(bytes).await.map_err(ForwardError::Write)?;
    dst.flush().await.map_err(ForwardError::Write)
}
