//! HTTP/1.1 message parsing and framing (mode http).
//!
//! This layer is pure: no I/O, no allocation per header on the common path.
//! Parsers hand out slices of the caller's buffer; the connection code owns
//! buffers and sockets.
//!
//! - [`request`]: request heads → [`RequestHead`] or a 400 ([`HeadError`]).
//! - [`response`]: response heads → [`ResponseHead`] or an error the proxy
//!   turns into 502.
//! - [`chunked`]: streaming validator for chunked bodies that are forwarded
//!   as they are (finds chunk data and the end of the message).
//! - [`rewrite`]: builds the outgoing heads (hop-by-hop removal,
//!   X-Forwarded-*, Connection).
//! - [`errors`]: HAProxy's default error responses and `errorfile` loading.
//! - [`locate`]: where the fault sits in a refused head (`show errors`).
//!
//! Choices against HAProxy 2.6 (the reference) are listed in each module
//! and summed up here:
//! - Oversized request head (more than `tune.bufsize - tune.maxrewrite`
//!   bytes): 400, as HAProxy. Too many headers (`tune.http.maxhdr`): 400.
//! - Content-Length together with Transfer-Encoding: 400. HAProxy 2.6
//!   instead drops Content-Length, uses chunked and closes afterwards.
//! - Identical repeated Content-Length values are merged (as HAProxy);
//!   differing ones are a 400.
//! - Transfer-Encoding in an HTTP/1.0 request: 400 (RFC 9112 §6.1 calls its
//!   framing faulty; a 1.0 backend would not decode it).
//! - Missing Host in HTTP/1.1, or two Host fields even if identical: 400
//!   (RFC 9112 §3.2). HAProxy 2.6 accepts both.
//! - HTTP versions other than 1.0/1.1, HTTP/0.9 lines and the HTTP/2
//!   preface: 400 (HAProxy would upgrade the preface to h2).
//! - Bytes >= 0x80 in the request target: 400, as HAProxy by default.
//! - Bare LF line endings in heads are accepted (as HAProxy); outgoing heads
//!   are rebuilt with CRLF. In chunked framing bare LF is refused.
//! - Header names keep their case when forwarded (HAProxy 2.x lowercases).

pub mod base64;
pub mod chunked;
pub mod errors;
mod head;
pub mod locate;
pub mod request;
pub mod response;
pub mod rewrite;
mod syntax;

pub use chunked::{ChunkedError, ChunkedLimits, ChunkedScanner, Scan, Segment};
pub use errors::{load_errorfile, parse_errorfile, ErrorFileError, ErrorPages, ErrorResponse};
pub(crate) use head::HeaderSpan;
pub use head::{
    is_websocket, BodyFraming, HeadError, HeadLimits, Headers, ParseStatus, Version,
    DEFAULT_BUFSIZE, DEFAULT_MAX_HEADERS, MAXREWRITE,
};
pub use request::{Method, RequestHead, RequestParser, TargetForm};
pub use response::{ResponseHead, ResponseParser};
pub use rewrite::{
    write_request_head, write_response_head, ClientSide, ConnectionMode, ForwardFor, Network,
    RequestRewrite,
};
