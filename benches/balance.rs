//! Cost of choosing a server and taking/releasing its slot (the per-connection
//! path of `backend::acquire` when no queueing is needed), per algorithm.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures_lite::future::block_on;
use percore::backend::{acquire, BackendRuntime};
use percore::config::{Backend, Balance, Mode, Server, Timeouts};

fn backend(balance: Balance, servers: usize) -> Backend {
    Backend {
        name: "bench".into(),
        mode: Mode::Tcp,
        balance,
        servers: (0..servers)
            .map(|i| Server {
                name: format!("s{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16)),
                weight: 1 + (i as u32 % 4),
                maxconn: Some(1_000),
                backup: false,
                disabled: false,
                check: None,
                ssl: None,
                cookie: None,
                send_proxy: None,
                proto: Default::default(),
            })
            .collect(),
        retries: 3,
        redispatch: Some(-1),
        allbackups: false,
        timeouts: Timeouts::default(),
        check: Default::default(),
        http: Default::default(),
        balance_params: Default::default(),
        rules: Default::default(),
        cookie: None,
        stick_table: None,
        stick_rules: Vec::new(),
    }
}

fn acquire_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire_release");
    for balance in [
        Balance::RoundRobin,
        Balance::StaticRr,
        Balance::LeastConn,
        Balance::First,
        Balance::Source,
        Balance::Random,
    ] {
        for servers in [4, 32] {
            let be = Rc::new(RefCell::new(BackendRuntime::new(
                &backend(balance, servers),
                0,
                1,
            )));
            let mut n: u32 = 0;
            group.bench_with_input(
                BenchmarkId::new(format!("{balance:?}"), servers),
                &servers,
                |b, _| {
                    b.iter(|| {
                        n = n.wrapping_add(1);
                        let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(n)), 1234);
                        // The fast path never awaits, so no executor is needed.
                        let slot = block_on(acquire(&be, client, &[], None));
                        slot.map(|s| s.server()).ok()
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, acquire_release);
criterion_main!(benches);
