//! The stats endpoint's HTTP/1.1 responder: one request per connection,
//! parsed with the proxy's own [`RequestParser`], answered and closed. It
//! runs on every core on that core's SO_REUSEPORT listener.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::collect::Collector;
use super::render::{self, PageInfo, View};
use crate::config::{StatsPage, METRICS_PATH};
use crate::http::{HeadLimits, ParseStatus, RequestParser};
use crate::shard::Shard;

/// A stats request head larger than this is refused.
const MAX_HEAD: usize = 8192;
/// Whole request must arrive within this (slow clients hold a task).
const READ_PATIENCE: Duration = Duration::from_secs(10);
/// Concurrent stats connections per core; more are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// What the request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Html { refresh: bool },
    Csv,
    Json,
    Metrics,
}

/// The part of a request the responder needs, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: &'static str,
    pub extra_headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            extra_headers: Vec::new(),
            body: format!("{body}\n"),
        }
    }

    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.extra_headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// Which output a path and query select, `None` if neither the stats uri
/// nor `/metrics`. HAProxy spellings: `<uri>;csv`, `<uri>;json`,
/// `<uri>;norefresh`, `<uri>?stats;csv`; also `?format=csv|json`.
pub fn route(page: &StatsPage, path: &str, query: Option<&str>) -> Option<Output> {
    if path == METRICS_PATH {
        return Some(Output::Metrics);
    }
    let rest = path.strip_prefix(page.uri.as_str())?;
    if !(rest.is_empty() || rest.starts_with(';') || rest == "/") {
        return None;
    }
    let words: Vec<&str> = rest
        .split(';')
        .chain(query.unwrap_or("").split(['&', ';']))
        .collect();
    let has = |w: &str| words.contains(&w);
    Some(if has("csv") || has("format=csv") {
        Output::Csv
    } else if has("json") || has("format=json") {
        Output::Json
    } else {
        Output::Html {
            refresh: !has("norefresh"),
        }
    })
}

/// True if the request may see the stats (`auth` unset, or Basic
/// credentials matching it).
pub fn authorized(page: &StatsPage, authorization: Option<&[u8]>) -> bool {
    let Some((user, pass)) = &page.auth else {
        return true;
    };
    let Some(value) = authorization else {
        return false;
    };
    let value = value.trim_ascii();
    let Some(encoded) = value
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
        .map(|_| value[6..].trim_ascii())
    else {
        return false;
    };
    let Some(decoded) = crate::http::base64::base64_decode(encoded) else {
        return false;
    };
    let expected = format!("{user}:{pass}");
    // Length first, then every byte: no early exit on the first mismatch.
    decoded.len() == expected.len()
        && decoded
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Everything one core needs to serve stats.
pub struct StatsService {
    pub page: StatsPage,
    pub shard: Rc<Shard>,
    pub collector: Rc<Collector>,
    pub started: Instant,
    pub hostname: String,
    active: std::cell::Cell<usize>,
}

impl StatsService {
    pub fn new(
        page: StatsPage,
        shard: Rc<Shard>,
        collector: Rc<Collector>,
        started: Instant,
    ) -> Self {
        StatsService {
            page,
            shard,
            collector,
            started,
            hostname: crate::log::syslog::hostname(),
            active: std::cell::Cell::new(0),
        }
    }

    /// Accepts stats connections until the core is told to stop.
    pub async fn serve(self: Rc<Self>, listener: TcpListener, shard: Rc<Shard>) {
        let stop = &shard.stop;
        loop {
            let accepted =
                futures_lite::future::or(async { Some(listener.accept().await) }, async {
                    stop.soft.wait().await;
                    None
                })
                .await;
            let stream = match accepted {
                None => return,
                Some(Ok(s)) => s,
                Some(Err(_)) => {
                    // Out of descriptors or similar: pause, do not spin.
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if self.active.get() >= MAX_CONNECTIONS {
                continue; // dropped: closed
            }
            self.active.set(self.active.get() + 1);
            let this = Rc::clone(&self);
            glommio::spawn_local(async move {
                let _ = this.handle(stream).await;
                this.active.set(this.active.get() - 1);
            })
            .detach();
        }
    }

    async fn handle(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let request = futures_lite::future::or(read_request(&mut stream), async {
            glommio::timer::sleep(READ_PATIENCE).await;
            Err(Response::text(408, "Request Timeout", "request timeout"))
        })
        .await;
        let (response, head_only) = match request {
            Ok(req) => {
                let head_only = req.method == "HEAD";
                (self.respond(&req).await, head_only)
            }
            Err(response) => (response, false),
        };
        stream.write_all(&response.bytes(head_only)).await?;
        stream.close().await
    }

    async fn respond(&self, req: &Request) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            let mut r = Response::text(405, "Method Not Allowed", "only GET and HEAD");
            r.extra_headers.push(("Allow", "GET, HEAD".into()));
            return r;
        }
        let Some(output) = route(&self.page, &req.path, req.query.as_deref()) else {
            return Response::text(404, "Not Found", "not found");
        };
        if !authorized(&self.page, req.authorization.as_deref()) {
            let mut r = Response::text(401, "Unauthorized", "authentication required");
            r.extra_headers.push((
                "WWW-Authenticate",
                "Basic realm=\"percore statistics\"".into(),
            ));
            return r;
        }
        let (snapshot, ctx) = self.collector.collect(&self.shard).await;
        let mut info = PageInfo::now(
            self.started,
            ctx.core_count,
            self.hostname.clone(),
            &ctx.config,
        );
        if self.page.hide_version {
            info.version = None;
        }
        info.uri = self.page.uri.clone();
        info.refresh = match output {
            Output::Html { refresh: true } => self.page.refresh,
            _ => None,
        };
        // `stopping` stays false: this listener closes on a soft stop.
        let view = View {
            config: &ctx.config,
            snapshot: &snapshot,
            info: &info,
        };
        let (content_type, body) = match output {
            Output::Html { .. } => ("text/html; charset=utf-8", render::html::render(&view)),
            Output::Csv => ("text/plain; charset=utf-8", render::csv::render(&view)),
            Output::Json => ("application/json", render::json::render(&view)),
            Output::Metrics => (
                "text/plain; version=0.0.4; charset=utf-8",
                render::prometheus::render(&view),
            ),
        };
        Response {
            status: 200,
            reason: "OK",
            content_type,
            extra_headers: Vec::new(),
            body,
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Result<Request, Response> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    let mut parser = RequestParser::new(HeadLimits {
        max_head_bytes: MAX_HEAD,
        ..HeadLimits::default()
    });
    loop {
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(|_| Response::text(400, "Bad Request", "read error"))?;
        if n == 0 {
            return Err(Response::text(400, "Bad Request", "incomplete request"));
        }
        filled += n;
        match parser.parse(&buf[..filled]) {
            ParseStatus::Partial if filled < MAX_HEAD => continue,
            ParseStatus::Partial => {
                return Err(Response::text(
                    431,
                    "Request Header Fields Too Large",
                    "request too large",
                ))
            }
            ParseStatus::Error(e) => return Err(Response::text(400, "Bad Request", e.reason())),
            ParseStatus::Complete(head) => {
                return Ok(Request {
                    method: head.method.to_string(),
                    path: head.path.to_string(),
                    query: head.query.map(str::to_string),
                    authorization: head.headers.find("authorization").map(<[u8]>::to_vec),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(auth: Option<(&str, &str)>) -> StatsPage {
        StatsPage {
            bind: "127.0.0.1:1".parse().unwrap(),
            uri: "/stats".into(),
            auth: auth.map(|(u, p)| (u.into(), p.into())),
            hide_version: false,
            refresh: None,
        }
    }

    #[test]
    fn routes_haproxy_spellings() {
        let p = page(None);
        assert_eq!(
            route(&p, "/stats", None),
            Some(Output::Html { refresh: true })
        );
        assert_eq!(
            route(&p, "/stats;norefresh", None),
            Some(Output::Html { refresh: false })
        );
        assert_eq!(route(&p, "/stats;csv", None), Some(Output::Csv));
        assert_eq!(route(&p, "/stats", Some("stats;csv")), Some(Output::Csv));
        assert_eq!(route(&p, "/stats;json", None), Some(Output::Json));
        assert_eq!(route(&p, "/stats", Some("format=json")), Some(Output::Json));
        assert_eq!(route(&p, "/metrics", None), Some(Output::Metrics));
        assert_eq!(route(&p, "/statsx", None), None);
        assert_eq!(route(&p, "/", None), None);
    }

    #[test]
    fn basic_auth() {
        let p = page(Some(("admin", "s3cret")));
        // "admin:s3cret"
        assert!(authorized(&p, Some(b"Basic YWRtaW46czNjcmV0")));
        assert!(authorized(&p, Some(b"basic  YWRtaW46czNjcmV0 ")));
        assert!(!authorized(&p, Some(b"Basic YWRtaW46czNjcmVU")));
        assert!(!authorized(&p, Some(b"Bearer YWRtaW46czNjcmV0")));
        assert!(!authorized(&p, Some(b"Basic !!!")));
        assert!(!authorized(&p, None));
        assert!(authorized(&page(None), None));
    }
}
