//! A 1 GiB upload and a 1 GiB download through `mode = "http"`, SHA-256
//! checked at both ends, with the proxy's resident memory sampled from
//! /proc while the bytes move: bodies are streamed, never buffered whole.

mod common;

use common::http_backend::http_config;
use common::*;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const SIZE: u64 = 1 << 30;
const RSS_BOUND_KIB: u64 = 64 << 10;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the request body (Content-Length), answers with its SHA-256 in a
/// header and a chunked 1 GiB body whose SHA-256 goes in a trailer.
fn bulk_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut rd = BufReader::with_capacity(256 << 10, stream);
        let mut len = 0u64;
        loop {
            let mut line = String::new();
            rd.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut sha = Sha256::new();
        let mut left = len;
        let mut buf = vec![0u8; 256 << 10];
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = rd.read(&mut buf[..want]).unwrap();
            assert!(n > 0, "upload truncated");
            sha.update(&buf[..n]);
            left -= n as u64;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nX-Upload-Sha256: {}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Download-Sha256\r\n\r\n",
            hex(&sha.finalize())
        );
        out.write_all(head.as_bytes()).unwrap();
        let mut pattern = Pattern::new(2);
        let mut sha = Sha256::new();
        let mut sent = 0u64;
        let mut chunk = vec![0u8; 64 << 10];
        while sent < SIZE {
            pattern.fill(&mut chunk);
            sha.update(&chunk);
            out.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .unwrap();
            out.write_all(&chunk).unwrap();
            out.write_all(b"\r\n").unwrap();
            sent += chunk.len() as u64;
        }
        out.write_all(
            format!("0\r\nX-Download-Sha256: {}\r\n\r\n", hex(&sha.finalize())).as_bytes(),
        )
        .unwrap();
    });
    addr
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn one_gib_up_and_one_gib_down_with_bounded_memory() {
    let server = bulk_server();
    let proxy = Proxy::start(&http_config("", &servers(&[server])));

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak, pid) = (Arc::clone(&done), Arc::clone(&peak), proxy.pid());
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(kib) = vm_rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let mut c = connect(proxy.addr());
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!("POST /bulk HTTP/1.1\r\nHost: t\r\nContent-Length: {SIZE}\r\n\r\n");
    c.write_all(head.as_bytes()).unwrap();
    let mut pattern = Pattern::new(1);
    let mut sha_up = Sha256::new();
    let mut chunk = vec![0u8; 256 << 10];
    let mut sent = 0u64;
    while sent < SIZE {
        pattern.fill(&mut chunk);
        sha_up.update(&chunk);
        c.write_all(&chunk).unwrap();
        sent += chunk.len() as u64;
    }
    let sha_up = hex(&sha_up.finalize());

    let mut rd = BufReader::with_capacity(256 << 10, c);
    let mut response_head = String::new();
    loop {
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        response_head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(response_head.starts_with("HTTP/1.1 200"), "{response_head}");
    assert!(
        response_head.contains(&format!("X-Upload-Sha256: {sha_up}")),
        "upload digest differs: {response_head}"
    );
    let mut sha_down = Sha256::new();
    let mut received = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    let trailer = loop {
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        let size = u64::from_str_radix(line.trim(), 16).unwrap();
        if size == 0 {
            let mut t = String::new();
            rd.read_line(&mut t).unwrap();
            let mut end = String::new();
            rd.read_line(&mut end).unwrap();
            assert_eq!(end, "\r\n");
            break t;
        }
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = rd.read(&mut buf[..want]).unwrap();
            assert!(n > 0, "download truncated");
            sha_down.update(&buf[..n]);
            left -= n as u64;
        }
        received += size;
        let mut crlf = [0u8; 2];
        rd.read_exact(&mut crlf).unwrap();
    };
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(received, SIZE);
    assert_eq!(
        trailer.trim_end(),
        format!("X-Download-Sha256: {}", hex(&sha_down.finalize()))
    );
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("proxy peak VmRSS during 2 GiB of bodies: {peak} KiB");
    assert!(peak > 0, "RSS was sampled");
    assert!(peak < RSS_BOUND_KIB, "proxy RSS peaked at {peak} KiB");
}
