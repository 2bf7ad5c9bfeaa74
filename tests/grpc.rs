//! gRPC end to end through percore: a real gRPC client and server (Python
//! `grpcio`, tests/grpc/echo.py, installed by .ci/run), TLS with ALPN h2
//! on the frontend, HTTP/2 with prior knowledge (`proto = "h2"`) to the
//! server. Unary, bidirectional streaming (ping-pong), a large message, a
//! non-OK status (NOT_FOUND from the server), trailing metadata, and many
//! concurrent calls sharing the server connection.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::http_backend::http_config;
use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/echo.py");

/// Fails (never skips) when Python's grpcio is missing.
fn require_grpcio() {
    let found = Command::new("python3")
        .args(["-c", "import grpc"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "python3 with grpcio is required for the gRPC test: .ci/run installs it \
         (python3 -m pip install grpcio)"
    );
}

/// The gRPC server of echo.py on an ephemeral port; stopped when dropped.
struct GrpcServer {
    child: Child,
    addr: SocketAddr,
}

impl GrpcServer {
    fn start() -> GrpcServer {
        let mut child = Command::new("python3")
            .args([SCRIPT, "server"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the gRPC server says its port");
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the gRPC server: {line:?}"));
        GrpcServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The certificate of a `site_bundle` alone (what the client trusts).
fn certificate_of(bundle: &Path, dir: &Path) -> PathBuf {
    let pem = std::fs::read_to_string(bundle).unwrap();
    let end = "-----END CERTIFICATE-----";
    let cert = &pem[..pem.find(end).expect("a certificate") + end.len()];
    let path = dir.join("ca.pem");
    std::fs::write(&path, format!("{cert}\n")).unwrap();
    path
}

#[test]
fn grpc_calls_pass_tls_frontend_to_h2c_server() {
    require_grpcio();
    let server = GrpcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let bundle = site_bundle(dir.path());
    let ca = certificate_of(&bundle, dir.path());
    let config = http_config(
        "",
        &format!(
            r#"servers = [{{ name = "grpc", addr = "{}", proto = "h2" }}]"#,
            server.addr
        ),
    )
    .replace(
        "bind = [\"127.0.0.1:{port}\"]",
        &format!(
            r#"bind = [{{ addr = "127.0.0.1:{{port}}", ssl = true, crt = "{}", alpn = "h2,http/1.1" }}]"#,
            bundle.display()
        ),
    );
    let proxy = Proxy::start(&config);

    let out = Command::new("timeout")
        .args(["120", "python3", SCRIPT, "client"])
        .arg(proxy.addr().to_string())
        .arg(&ca)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!(
        "client output:\n{stdout}\n{stderr}\npercore:\n{}",
        proxy.stderr()
    );
    assert!(out.status.success(), "{report}");
    for check in [
        "unary",
        "trailer",
        "bidi",
        "large",
        "not_found",
        "concurrent",
    ] {
        assert!(
            stdout.contains(&format!("{check}: ok")),
            "check {check} missing or failed\n{report}"
        );
    }
    // 200 calls, 50 at a time, from one client connection: one core, and
    // fewer concurrent streams than the server's limit, so one server
    // connection carried them all.
    assert!(stdout.contains("peers: 1\n"), "{report}");
}
