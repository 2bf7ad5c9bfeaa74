//! TLS with rustls (ring provider): termination on binds, origination to
//! servers. Independent of the socket layer: the data path wraps whatever
//! stream it has (futures-io `AsyncRead + AsyncWrite`) with `futures-rustls`.
//!
//! Every core builds its own rustls configurations from the loaded
//! settings ([`BindTls::server_config`], [`OriginTls::client_config`]):
//! own signing keys, session cache and ticketer, so no handshake touches a
//! lock or reference count that another core writes.

pub mod certs;
pub mod client;
pub mod handshake;
pub mod resolve;
pub mod server;
pub mod suites;
pub mod tickets;
pub mod x509;

pub use certs::{load_ca_file, load_cert, load_crt, CertError, LoadedCert};
pub use client::{OriginTls, Verify};
pub use handshake::HandshakeError;
pub use server::BindTls;
pub use suites::{parse_suites, parse_version, SuiteList, TlsVersion};
pub use tickets::TicketSecret;

/// The provider every certificate is checked with at load.
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(test)]
mod tests;
