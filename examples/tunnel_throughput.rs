//! Bulk throughput of one tunnel on loopback: a source thread pushes N GiB
//! through `net::tunnel::run` to a sink thread.
//!
//! cargo run --release --example tunnel_throughput -- <splice|copy> [GiB] [bufsize] [pipesize]
//!
//! With `PINGPONG=<n>` in the environment it instead does n round trips of
//! 64 bytes through an echoing server and reports executor CPU per round
//! trip (the small-message cost the adaptive splice must not worsen).
//!
//! The executor is pinned to the last CPU, the peers to CPU 0. Prints wall
//! time, throughput and the executor thread's CPU seconds per GiB.

use std::io::{Read, Write};
use std::net::{TcpListener as StdListener, TcpStream as StdStream};
use std::thread;
use std::time::Instant;

use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use percore::net::tunnel::{run, TunnelSettings};
use percore::net::PipePool;

fn cpu_seconds(who: libc::c_int) -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn pin(cpu: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let splice = args.get(1).map(|s| s == "splice").unwrap_or(true);
    let gib: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let bufsize: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(16 * 1024);
    let pipesize: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let pingpong: Option<u64> = std::env::var("PINGPONG").ok().and_then(|v| v.parse().ok());
    let total = if pingpong.is_some() { 0 } else { gib << 30 };
    let ncpu = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let backend = StdListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let sink = thread::spawn(move || {
        pin(0);
        let (mut s, _) = backend.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        if pingpong.is_some() {
            let mut msg = [0u8; 64];
            while s.read_exact(&mut msg).is_ok() {
                s.write_all(&msg).unwrap();
            }
            return 0;
        }
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got += n as u64;
        }
    });

    let ex = LocalExecutorBuilder::new(Placement::Fixed(ncpu - 1))
        .io_memory(512 << 10)
        .make()
        .unwrap();
    let (report, secs, cpu) = ex.run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let source = thread::spawn(move || {
            pin(0);
            let mut s = StdStream::connect(addr).unwrap();
            if let Some(n) = pingpong {
                s.set_nodelay(true).unwrap();
                let mut msg = [7u8; 64];
                for _ in 0..n {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut msg).unwrap();
                }
                return;
            }
            let buf = vec![0x5au8; 1 << 20];
            let mut left = total;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n]).unwrap();
                left -= n as u64;
            }
        });
        let client = listener.accept().await.unwrap();
        let server = TcpStream::connect(backend_addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        server.set_nodelay(true).unwrap();
        let pipes = PipePool::new(pipesize, 16);
        let settings = TunnelSettings {
            idle_timeout: Some(std::time::Duration::from_secs(30)),
            splice,
            bufsize,
        };
        let cpu0 = cpu_seconds(libc::RUSAGE_THREAD);
        let t0 = Instant::now();
        let report = run(client, server, &[], &[], &settings, &pipes).await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds(libc::RUSAGE_THREAD) - cpu0;
        source.join().unwrap();
        (report, secs, cpu)
    });
    let got = sink.join().unwrap();
    assert_eq!(got, total);
    if let Some(n) = pingpong {
        println!(
            "pingpong {}: {n} round trips in {secs:.2}s, executor CPU {:.2} us per round trip, {:?}",
            if splice { "splice" } else { "copy" },
            cpu * 1e6 / n as f64,
            report.end
        );
        return;
    }
    let gibs = total as f64 / (1u64 << 30) as f64;
    println!(
        "{} bufsize={} pipesize={}: {:.2} GiB in {:.2}s = {:.2} GiB/s; executor CPU {:.3}s = {:.3} s/GiB; spliced {:.1}%; end {:?}",
        if splice { "splice" } else { "copy" },
        bufsize,
        pipesize,
        gibs,
        secs,
        gibs / secs,
        cpu,
        cpu / gibs,
        100.0 * report.spliced as f64 / total as f64,
        report.end
    );
}
