//! Head parsing cost for a typical browser request, plus the rewrite and
//! chunked scanning that follow it on the proxy path.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use percore::http::{
    write_request_head, ChunkedScanner, ClientSide, ConnectionMode, ForwardFor, RequestParser,
    RequestRewrite,
};

const BROWSER: &[u8] = b"GET /static/js/app.3f9a1c.js?v=20240611 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/products/widgets?page=2\r\n\
Connection: keep-alive\r\n\
Cookie: session=4f1c2a9be0d34f7a8c61; theme=dark; consent=1; _ga=GA1.2.1234567890.1700000000\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-None-Match: \"5d8c72a5edda8\"\r\n\
Priority: u=2\r\n\
\r\n";

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1));

    // Baseline: httparse alone, no validation beyond its own.
    group.bench_function("httparse_only_browser_request", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 101];
            let mut req = httparse::Request::new(&mut headers);
            black_box(req.parse(black_box(BROWSER)).ok())
        })
    });

    let mut parser = RequestParser::default();
    group.bench_function("parse_browser_request", |b| {
        b.iter(|| {
            let head = parser.parse(black_box(BROWSER)).complete();
            black_box(head.map(|h| h.head_len))
        })
    });

    let rewrite = RequestRewrite {
        forward_for: Some(ForwardFor::default()),
        forwarded_proto: true,
        forwarded_port: true,
    };
    let client = ClientSide {
        addr: "192.0.2.33".parse().expect("literal address"),
        local_port: 443,
        tls: true,
    };
    let mut out = Vec::with_capacity(2048);
    group.bench_function("parse_and_rewrite_browser_request", |b| {
        b.iter(|| {
            out.clear();
            if let Some(head) = parser.parse(black_box(BROWSER)).complete() {
                write_request_head(
                    &mut out,
                    &head,
                    &rewrite,
                    &client,
                    ConnectionMode::KeepAlive,
                );
            }
            black_box(out.len())
        })
    });

    let mut body = Vec::new();
    for _ in 0..16 {
        body.extend_from_slice(b"1000\r\n");
        body.extend(std::iter::repeat_n(b'x', 0x1000));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chunked_scan_64k", |b| {
        b.iter(|| {
            let mut s = ChunkedScanner::default();
            black_box(s.scan(black_box(&body)).map(|r| r.done))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
