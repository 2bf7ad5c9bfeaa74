//! Handshakes over any futures-io stream, bounded by a timeout.

use std::io;
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::{client, server, TlsAcceptor, TlsConnector};
use rustls::pki_types::ServerName;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake timed out")]
    TimedOut,
    /// The peer's or rustls' reason, e.g. "invalid peer certificate:
    /// UnknownIssuer" or "received corrupt message" (plain HTTP).
    #[error("TLS handshake failed: {0}")]
    Failed(io::Error),
}

async fn bounded<T>(
    limit: Option<Duration>,
    handshake: impl std::future::Future<Output = io::Result<T>>,
) -> Result<T, HandshakeError> {
    let handshake = async { handshake.await.map_err(HandshakeError::Failed) };
    match limit {
        None => handshake.await,
        Some(limit) => {
            futures_lite::future::or(handshake, async {
                glommio::timer::sleep(limit).await;
                Err(HandshakeError::TimedOut)
            })
            .await
        }
    }
}

/// Server side (termination): a client that has not finished within
/// `limit` (`timeout client`) is dropped.
pub async fn accept<IO>(
    acceptor: &TlsAcceptor,
    io: IO,
    limit: Option<Duration>,
) -> Result<server::TlsStream<IO>, HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    bounded(limit, acceptor.accept(io)).await
}

/// Client side (origination), bounded by `timeout connect`.
pub async fn connect<IO>(
    connector: &TlsConnector,
    name: ServerName<'static>,
    io: IO,
    limit: Option<Duration>,
) -> Result<client::TlsStream<IO>, HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    bounded(limit, connector.connect(name, io)).await
}
