//! Who made a session or request fail, and where: the one value that the
//! access log's termination state, the error page's status, the stats'
//! abort and error counters and the passive health checks all read.
//!
//! Each module that finds an error keeps its own detailed error type (an
//! I/O error, a parser's reason, a TLS handshake's reason) and turns it
//! into a [`Blame`] where the session decides how it ended. A `Blame` is
//! three small enums (`Copy`, 3 bytes): carrying it costs nothing per
//! request. HAProxy's two-character termination state is read from it in
//! one place, [`Blame::termination_state`]; the other readers use the
//! methods below it, never the characters.
//!
//! It lives in `net`, the floor of the crate, so that `log`, `stats`,
//! `shard` (passive checks), `health` and `proxy` can all import it.

/// Who is to blame: the first character of HAProxy's termination state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client went away, was too slow, or sent what it must not (`C`,
    /// `c` for a timeout).
    Client,
    /// The server refused, went away or was too slow (`S`, `s`).
    Server,
    /// The proxy refused something on purpose: an invalid message, a rule
    /// (`P`).
    Proxy,
    /// The proxy answered the request itself (`L`).
    Local,
    /// The proxy's own resources failed, e.g. a pipe (`R`).
    Resource,
    /// The runtime API shut the session down (`K`).
    Admin,
}

/// Where the session was: the second character of the termination state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for, or reading, the request head (`R`).
    Request,
    /// Waiting in the backend queue for a server slot (`Q`).
    Queue,
    /// Connecting to the server (`C`).
    Connect,
    /// The TLS handshake with the server. HAProxy counts it as part of the
    /// connect (`C`); percore keeps it apart so that a failed handshake is
    /// not mistaken for a refused connection in counters and checks.
    Tls,
    /// Waiting for, or reading, the response head (`H`).
    Headers,
    /// Moving the bodies, or a tunnel's bytes (`D`).
    Data,
    /// Held by `http-request tarpit` (`T`).
    Tarpit,
    /// The session had ended normally; only a kill gives it a blame (`-`).
    Ended,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The peer closed or reset the connection, or its socket failed.
    Closed,
    /// A timeout expired (the side's character is then lower case).
    Timeout,
    /// The server refused the connection.
    Refused,
    /// No usable server.
    NoServer,
    /// The TLS handshake with the server failed (certificate not trusted,
    /// the server does not speak TLS, ...).
    Handshake,
    /// The peer broke the protocol (invalid head, framing, h2 preface).
    Invalid,
    /// A rule refused the message (`deny`, `reject`, `tarpit`).
    Denied,
    /// A rule answered (`return`, `redirect`, `auth`).
    Answered,
    /// Killed by the runtime API.
    Killed,
}

/// HAProxy's two-character session termination state (`SC`, `cD`, `--`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminationState([u8; 2]);

impl TerminationState {
    pub fn as_str(&self) -> &str {
        // Both bytes come from the ASCII tables below.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for TerminationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failure adds to the backend's and server's counters (besides
/// connect errors, counted per attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `cli_abrt`.
    ClientAbort,
    /// `srv_abrt` and `eresp`.
    ServerAbort,
    /// `eresp` alone: the response was invalid or late.
    ResponseError,
}

/// Who failed, where, and how. `None` in an `Option<Blame>` is a normal
/// end (`--`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blame {
    pub side: Side,
    pub stage: Stage,
    pub cause: Cause,
}

impl Blame {
    pub const fn new(side: Side, stage: Stage, cause: Cause) -> Self {
        Blame { side, stage, cause }
    }

    pub const fn client(stage: Stage, cause: Cause) -> Self {
        Blame::new(Side::Client, stage, cause)
    }

    pub const fn server(stage: Stage, cause: Cause) -> Self {
        Blame::new(Side::Server, stage, cause)
    }

    pub const fn proxy(stage: Stage, cause: Cause) -> Self {
        Blame::new(Side::Proxy, stage, cause)
    }

    /// The same end, caused by the runtime API shutting the session down
    /// (`shutdown session`, `shutdown sessions server`): HAProxy's `K`
    /// with the stage the session was in (`K-` for a tunnel that had
    /// ended anyway, `KH` for a request waiting for its response, as
    /// HAProxy 2.6).
    pub fn killed(end: Option<Blame>) -> Blame {
        Blame::new(
            Side::Admin,
            end.map_or(Stage::Ended, |b| b.stage),
            Cause::Killed,
        )
    }

    /// HAProxy's termination state: the only place its characters are
    /// written.
    pub fn termination_state(self) -> TerminationState {
        let (who, _) = self.side.table();
        let who = if self.cause == Cause::Timeout {
            who.to_ascii_lowercase()
        } else {
            who
        };
        TerminationState([who, self.stage.table().0])
    }

    /// The error page HAProxy sends for this failure when nothing of a
    /// response reached the client yet; `None`: close without one (the
    /// client left or was killed), or the status is the rule's own.
    pub fn error_status(self) -> Option<u16> {
        match (self.side, self.stage, self.cause) {
            (Side::Admin | Side::Local, ..) | (_, _, Cause::Denied | Cause::Answered) => None,
            // No server connection: 503, a connect timeout included.
            (_, Stage::Queue | Stage::Connect | Stage::Tls, _) => Some(503),
            (Side::Server, Stage::Headers, Cause::Timeout) => Some(504),
            (Side::Server | Side::Proxy, Stage::Headers, _) => Some(502),
            (Side::Client, _, Cause::Timeout) => Some(408),
            (Side::Proxy, Stage::Request | Stage::Data, Cause::Invalid) => Some(400),
            (Side::Server, Stage::Data, _) => Some(502),
            _ => None,
        }
    }

    /// The server let the request down before a valid response head came:
    /// what `observe layer7` counts besides 5xx statuses (HAProxy's read
    /// error, read timeout, broken pipe and invalid header analyses). A
    /// response refused by a rule is not the server's fault.
    pub fn server_failed_response(self) -> bool {
        match (self.side, self.cause) {
            (Side::Server, _) => matches!(self.stage, Stage::Headers | Stage::Data),
            (Side::Proxy, Cause::Invalid) => self.stage == Stage::Headers,
            _ => false,
        }
    }

    /// The counters a failed exchange or tunnel adds to.
    pub fn counted(self) -> Option<Counted> {
        match (self.side, self.stage, self.cause) {
            (Side::Client, Stage::Data, Cause::Closed) => Some(Counted::ClientAbort),
            (Side::Server, Stage::Headers, Cause::Closed) | (Side::Server, Stage::Data, _) => {
                Some(Counted::ServerAbort)
            }
            (Side::Server, Stage::Headers, Cause::Timeout)
            | (Side::Proxy, Stage::Headers, Cause::Invalid | Cause::Denied) => {
                Some(Counted::ResponseError)
            }
            _ => None,
        }
    }

    /// A failed TLS handshake with the server (counted as such, beside the
    /// connect error).
    pub fn is_server_tls(self) -> bool {
        self.side == Side::Server && self.stage == Stage::Tls
    }

    /// The passive health check's words for the last error (HAProxy's
    /// analyze statuses; TLS failures have a wording of their own, taken
    /// from HAProxy's connection errors, where HAProxy says "L4
    /// unsuccessful connection").
    pub fn analysis(self) -> &'static str {
        match (self.stage, self.cause) {
            (Stage::Tls, Cause::Timeout) => "Timeout during SSL handshake",
            (Stage::Tls, _) => "SSL handshake failure",
            (Stage::Queue | Stage::Connect, _) => "L4 unsuccessful connection",
            (Stage::Headers, Cause::Timeout) => "Read timeout (http)",
            (Stage::Headers, Cause::Closed) => "Close from server (http)",
            (Stage::Data, Cause::Closed) => "Read error (http)",
            _ => "Invalid http response",
        }
    }

    fn cause_name(self) -> &'static str {
        match self.cause {
            Cause::Closed => "closed",
            Cause::Timeout => "timeout",
            Cause::Refused => "refused",
            Cause::NoServer => "no server",
            Cause::Handshake => "handshake failed",
            Cause::Invalid => "invalid",
            Cause::Denied => "denied",
            Cause::Answered => "answered",
            Cause::Killed => "killed",
        }
    }
}

impl Side {
    /// The termination state's first character (upper case; a timeout
    /// lowers it) and the side's name in words.
    const fn table(self) -> (u8, &'static str) {
        match self {
            Side::Client => (b'C', "client"),
            Side::Server => (b'S', "server"),
            Side::Proxy => (b'P', "proxy"),
            Side::Local => (b'L', "local"),
            Side::Resource => (b'R', "resource"),
            Side::Admin => (b'K', "admin"),
        }
    }
}

impl Stage {
    /// The termination state's second character and the stage's name.
    const fn table(self) -> (u8, &'static str) {
        match self {
            Stage::Request => (b'R', "request"),
            Stage::Queue => (b'Q', "queue"),
            Stage::Connect => (b'C', "connect"),
            // HAProxy counts the handshake with the server in the connect.
            Stage::Tls => (b'C', "tls"),
            Stage::Headers => (b'H', "headers"),
            Stage::Data => (b'D', "data"),
            Stage::Tarpit => (b'T', "tarpit"),
            Stage::Ended => (b'-', "ended"),
        }
    }
}

/// `server tls: handshake failed` (the JSON log's `error`, messages).
impl std::fmt::Display for Blame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.side.table().1,
            self.stage.table().1,
            self.cause_name()
        )
    }
}

/// The termination state of a session or request that ended with `end`.
pub fn termination_state(end: Option<Blame>) -> TerminationState {
    end.map_or(TerminationState(*b"--"), Blame::termination_state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(b: Blame) -> String {
        b.termination_state().as_str().to_string()
    }

    /// HAProxy's states for the failures percore reports (the table in
    /// HAProxy's configuration manual, "Session state at disconnection").
    #[test]
    fn termination_states_match_haproxy() {
        use Cause::*;
        use Stage::*;
        let cases = [
            (Blame::client(Data, Closed), "CD"),
            (Blame::client(Data, Timeout), "cD"),
            (Blame::client(Request, Timeout), "cR"),
            (Blame::client(Request, Closed), "CR"),
            (Blame::server(Data, Closed), "SD"),
            (Blame::server(Connect, Refused), "SC"),
            (Blame::server(Connect, NoServer), "SC"),
            (Blame::server(Tls, Handshake), "SC"),
            (Blame::server(Tls, Timeout), "sC"),
            (Blame::server(Connect, Timeout), "sC"),
            (Blame::server(Queue, Timeout), "sQ"),
            (Blame::server(Headers, Closed), "SH"),
            (Blame::server(Headers, Timeout), "sH"),
            (Blame::proxy(Headers, Invalid), "PH"),
            (Blame::proxy(Request, Invalid), "PR"),
            (Blame::proxy(Request, Denied), "PR"),
            (Blame::proxy(Tarpit, Denied), "PT"),
            (Blame::proxy(Data, Invalid), "PD"),
            (Blame::new(Side::Local, Request, Answered), "LR"),
            (Blame::new(Side::Resource, Data, Closed), "RD"),
        ];
        for (blame, want) in cases {
            assert_eq!(ts(blame), want, "{blame}");
        }
        assert_eq!(termination_state(None).as_str(), "--");
    }

    #[test]
    fn a_kill_keeps_the_stage() {
        use Stage::*;
        assert_eq!(ts(Blame::killed(None)), "K-");
        let h = Blame::server(Headers, Cause::Closed);
        assert_eq!(ts(Blame::killed(Some(h))), "KH");
        assert_eq!(
            ts(Blame::killed(Some(Blame::client(Data, Cause::Closed)))),
            "KD"
        );
        assert_eq!(
            ts(Blame::killed(Some(Blame::server(Queue, Cause::Timeout)))),
            "KQ"
        );
        assert_eq!(Blame::killed(None).error_status(), None);
    }

    #[test]
    fn error_pages_follow_haproxy() {
        use Cause::*;
        use Stage::*;
        assert_eq!(Blame::server(Connect, Refused).error_status(), Some(503));
        assert_eq!(Blame::server(Tls, Handshake).error_status(), Some(503));
        assert_eq!(Blame::server(Connect, Timeout).error_status(), Some(503));
        assert_eq!(Blame::server(Headers, Closed).error_status(), Some(502));
        assert_eq!(Blame::proxy(Headers, Invalid).error_status(), Some(502));
        assert_eq!(Blame::server(Headers, Timeout).error_status(), Some(504));
        assert_eq!(Blame::client(Data, Timeout).error_status(), Some(408));
        assert_eq!(Blame::proxy(Data, Invalid).error_status(), Some(400));
        assert_eq!(Blame::client(Data, Closed).error_status(), None);
        assert_eq!(Blame::proxy(Headers, Denied).error_status(), None);
    }

    #[test]
    fn a_tls_failure_is_not_a_refused_connection() {
        let tls = Blame::server(Stage::Tls, Cause::Handshake);
        let refused = Blame::server(Stage::Connect, Cause::Refused);
        assert_eq!(tls.termination_state(), refused.termination_state());
        assert!(tls.is_server_tls() && !refused.is_server_tls());
        assert_eq!(tls.analysis(), "SSL handshake failure");
        assert_eq!(refused.analysis(), "L4 unsuccessful connection");
        assert_eq!(tls.to_string(), "server tls: handshake failed");
    }

    /// What `observe layer7` counts and what the abort/eresp counters get.
    #[test]
    fn server_failures_and_counters() {
        use Cause::*;
        use Stage::*;
        let cases = [
            // blame, observe layer7 counts it, counters
            (
                Blame::server(Headers, Closed),
                true,
                Some(Counted::ServerAbort),
            ),
            (
                Blame::server(Headers, Timeout),
                true,
                Some(Counted::ResponseError),
            ),
            (
                Blame::proxy(Headers, Invalid),
                true,
                Some(Counted::ResponseError),
            ),
            (
                Blame::proxy(Headers, Denied),
                false,
                Some(Counted::ResponseError),
            ),
            (
                Blame::server(Data, Closed),
                true,
                Some(Counted::ServerAbort),
            ),
            (
                Blame::server(Data, Timeout),
                true,
                Some(Counted::ServerAbort),
            ),
            (
                Blame::client(Data, Closed),
                false,
                Some(Counted::ClientAbort),
            ),
            (Blame::client(Data, Timeout), false, None),
            (Blame::proxy(Data, Invalid), false, None),
            (Blame::client(Request, Closed), false, None),
            (Blame::server(Connect, Refused), false, None),
            (Blame::new(Side::Resource, Data, Closed), false, None),
            (
                Blame::killed(Some(Blame::server(Headers, Closed))),
                false,
                None,
            ),
        ];
        for (blame, observed, counted) in cases {
            assert_eq!(blame.server_failed_response(), observed, "{blame}");
            assert_eq!(blame.counted(), counted, "{blame}");
        }
    }

    #[test]
    fn small_enough_to_copy() {
        assert!(std::mem::size_of::<Option<Blame>>() <= 4);
    }
}
