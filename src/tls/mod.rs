//! TLS with rustls (ring, signing with aws-lc-rs; see [`provider`]): termination on binds, origination to
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
pub mod peer_cert;
pub mod resolve;
pub mod server;
pub mod suites;
pub mod tickets;
pub mod x509;

pub use certs::{load_ca_file, load_cert, load_crl_file, load_crt, CertError, LoadedCert};
pub use client::{OriginTls, Verify};
pub use handshake::HandshakeError;
pub use server::{BindTls, ClientAuth};
pub use suites::{parse_suites, parse_version, SuiteList, TlsVersion};
pub use tickets::TicketSecret;

/// The provider every certificate is checked with at load, and every TLS
/// configuration starts from: ring's, with aws-lc-rs's key provider, so
/// that handshakes sign with aws-lc. Its RSA takes 44% of ring's CPU time
/// per signature on a CPU with AVX-512 IFMA (265 against 605 us for
/// RSA-2048; OpenSSL, which HAProxy uses, has the same code: 263 us), its
/// ECDSA P-256 about the same as ring's (16 against 17 us).
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        key_provider: rustls::crypto::aws_lc_rs::default_provider().key_provider,
        ..rustls::crypto::ring::default_provider()
    }
}

#[cfg(test)]
mod tests;
