use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_once;

use super::runtime::Pick;
use super::*;
use crate::config::{self, Balance, Mode, Timeouts};

fn server(name: &str, weight: u32) -> config::Server {
    let port = 10_000 + name.bytes().map(u16::from).sum::<u16>();
    config::Server {
        name: name.to_string(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        weight,
        maxconn: None,
        backup: false,
        disabled: false,
        check: None,
        ssl: None,
        cookie: None,
        send_proxy: None,
        proto: config::ServerProto::Http1,
    }
}

fn limited(name: &str, weight: u32, maxconn: u32) -> config::Server {
    config::Server {
        maxconn: Some(maxconn),
        ..server(name, weight)
    }
}

fn backup(name: &str) -> config::Server {
    config::Server {
        backup: true,
        ..server(name, 1)
    }
}

fn backend_cfg(balance: Balance, servers: Vec<config::Server>) -> config::Backend {
    config::Backend {
        name: "be".to_string(),
        mode: Mode::Tcp,
        balance,
        servers,
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

fn runtime(balance: Balance, servers: Vec<config::Server>) -> BackendRuntime {
    BackendRuntime::new(&backend_cfg(balance, servers), 0, 1)
}

fn shared(rt: BackendRuntime) -> Rc<RefCell<BackendRuntime>> {
    Rc::new(RefCell::new(rt))
}

fn client(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), 40_000)
}

/// Picks `n` times without holding slots.
fn picks(rt: &mut BackendRuntime, n: usize) -> Vec<usize> {
    (0..n).map(|i| pick(rt, client(i as u32), &[])).collect()
}

fn pick(rt: &mut BackendRuntime, from: SocketAddr, avoid: &[usize]) -> usize {
    match rt.pick(from.ip(), PickHint::default(), avoid) {
        Pick::Server(idx) => idx,
        other => panic!("expected a server, got {other:?}"),
    }
}

fn counts(picks: &[usize], servers: usize) -> Vec<usize> {
    let mut counts = vec![0; servers];
    for &p in picks {
        counts[p] += 1;
    }
    counts
}

/// Runs `fut` on a fresh glommio executor; the 30 s limit only catches a
/// hung test.
fn run<T>(fut: impl Future<Output = T>) -> T {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(64 << 10)
        .make()
        .unwrap();
    ex.run(async {
        futures_lite::future::or(fut, async {
            glommio::timer::sleep(Duration::from_secs(30)).await;
            panic!("test hung");
        })
        .await
    })
}

type Acquiring<'a> = Pin<Box<dyn Future<Output = Result<ServerSlot, AcquireError>> + 'a>>;

/// Starts an acquire and polls it once; `None` means it is queued.
async fn start<'a>(
    be: &'a Rc<RefCell<BackendRuntime>>,
    from: SocketAddr,
    timeout: Option<Duration>,
) -> (Acquiring<'a>, Option<Result<ServerSlot, AcquireError>>) {
    let mut fut: Acquiring<'a> = Box::pin(acquire(be, from, &[], timeout));
    let first = poll_once(&mut fut).await;
    (fut, first)
}

async fn take(be: &Rc<RefCell<BackendRuntime>>) -> ServerSlot {
    acquire(be, client(0), &[], None).await.unwrap()
}

// --- balance algorithms ---------------------------------------------------

#[test]
fn roundrobin_distribution_follows_weights() {
    let mut rt = runtime(
        Balance::RoundRobin,
        vec![server("a", 3), server("b", 2), server("c", 1)],
    );
    assert_eq!(counts(&picks(&mut rt, 600), 3), vec![300, 200, 100]);
}

#[test]
fn roundrobin_is_smooth() {
    let mut rt = runtime(
        Balance::RoundRobin,
        vec![server("a", 5), server("b", 1), server("c", 1)],
    );
    let cycle = [0, 0, 1, 0, 2, 0, 0];
    let seq = picks(&mut rt, 14);
    assert_eq!(&seq[..7], &cycle[..]);
    assert_eq!(&seq[7..], &cycle[..]);
}

#[test]
fn roundrobin_skips_full_server_and_keeps_weights_among_the_rest() {
    run(async {
        let be = shared(runtime(
            Balance::RoundRobin,
            vec![limited("a", 1, 1), server("b", 2), server("c", 1)],
        ));
        // Hold a's only slot; the remaining picks are b:c = 2:1.
        let held = loop {
            let slot = take(&be).await;
            if slot.server() == 0 {
                break slot;
            }
        };
        let mut seen = vec![0; 3];
        for _ in 0..300 {
            seen[take(&be).await.server()] += 1;
        }
        assert_eq!(seen, vec![0, 200, 100]);
        drop(held);
    });
}

#[test]
fn static_rr_distribution_follows_weights() {
    let mut rt = runtime(
        Balance::StaticRr,
        vec![server("a", 4), server("b", 2), server("c", 2)],
    );
    let seq = picks(&mut rt, 400);
    assert_eq!(counts(&seq, 3), vec![200, 100, 100]);
    // The map is reduced by the gcd and repeats with period 4.
    assert_eq!(&seq[..4], &seq[4..8]);
    assert_eq!(counts(&seq[..4], 3), vec![2, 1, 1]);
}

#[test]
fn random_distribution_roughly_follows_weights() {
    let mut rt = runtime(
        Balance::Random,
        vec![server("a", 1), server("b", 2), server("c", 7)],
    );
    let got = counts(&picks(&mut rt, 20_000), 3);
    for (n, expected) in got.iter().zip([2_000.0, 4_000.0, 14_000.0]) {
        let ratio = *n as f64 / expected;
        assert!((0.85..1.15).contains(&ratio), "{got:?}");
    }
}

#[test]
fn random_only_picks_usable_servers() {
    let mut rt = runtime(
        Balance::Random,
        vec![server("a", 1), server("b", 0), server("c", 1)],
    );
    rt.set_server_up(2, false);
    assert!(picks(&mut rt, 200).iter().all(|&s| s == 0));
}

#[test]
fn leastconn_picks_least_loaded() {
    run(async {
        let be = shared(runtime(
            Balance::LeastConn,
            vec![server("a", 1), server("b", 1), server("c", 1)],
        ));
        let mut held: Vec<ServerSlot> = Vec::new();
        for _ in 0..9 {
            held.push(take(&be).await);
        }
        // Each new connection went to a least loaded server: 3 each.
        let loads: Vec<u32> = (0..3)
            .map(|i| be.borrow().server_counters(i).current_conns)
            .collect();
        assert_eq!(loads, vec![3, 3, 3]);
        // Free two slots on b: the next two connections go to b.
        let b_slots: Vec<usize> = held
            .iter()
            .enumerate()
            .filter(|(_, s)| s.server() == 1)
            .map(|(i, _)| i)
            .take(2)
            .collect();
        for i in b_slots.into_iter().rev() {
            held.remove(i);
        }
        for _ in 0..2 {
            let slot = take(&be).await;
            assert_eq!(slot.server(), 1);
            held.push(slot);
        }
        let third = take(&be).await;
        assert_ne!(third.server(), 1);
    });
}

#[test]
fn leastconn_rotates_ties() {
    let mut rt = runtime(
        Balance::LeastConn,
        vec![server("a", 1), server("b", 1), server("c", 1)],
    );
    assert_eq!(picks(&mut rt, 6), vec![0, 1, 2, 0, 1, 2]);
}

#[test]
fn leastconn_weighs_connections() {
    run(async {
        let be = shared(runtime(
            Balance::LeastConn,
            vec![server("a", 2), server("b", 1)],
        ));
        let mut held = Vec::new();
        for _ in 0..30 {
            held.push(take(&be).await);
        }
        let rt = be.borrow();
        assert_eq!(rt.server_counters(0).current_conns, 20);
        assert_eq!(rt.server_counters(1).current_conns, 10);
        drop(rt);
    });
}

#[test]
fn first_fills_servers_in_order() {
    run(async {
        let be = shared(runtime(
            Balance::First,
            vec![limited("a", 1, 2), limited("b", 5, 2), server("c", 1)],
        ));
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(take(&be).await);
        }
        let order: Vec<usize> = held.iter().map(ServerSlot::server).collect();
        assert_eq!(order, vec![0, 0, 1, 1, 2, 2]);
        // A slot freed on the first server is used again before the others.
        held.remove(0);
        assert_eq!(take(&be).await.server(), 0);
    });
}

#[test]
fn source_is_sticky_per_ip_and_spreads() {
    let mut rt = runtime(
        Balance::Source,
        vec![
            server("a", 1),
            server("b", 1),
            server("c", 1),
            server("d", 1),
        ],
    );
    let mut first = Vec::new();
    for n in 0..2000u32 {
        first.push(pick(&mut rt, client(n * 7919), &[]));
    }
    for n in 0..2000u32 {
        // Same IP, different port: same server.
        let mut from = client(n * 7919);
        from.set_port(1 + (n % 60_000) as u16);
        assert_eq!(pick(&mut rt, from, &[]), first[n as usize]);
    }
    let spread = counts(&first, 4);
    assert!(
        spread.iter().all(|&c| (350..650).contains(&c)),
        "{spread:?}"
    );
}

#[test]
fn source_respects_weights() {
    let mut rt = runtime(Balance::Source, vec![server("a", 3), server("b", 1)]);
    let got: Vec<usize> = (0..4000u32)
        .map(|n| pick(&mut rt, client(n * 104_729), &[]))
        .collect();
    let c = counts(&got, 2);
    assert!((2700..3300).contains(&c[0]), "{c:?}");
}

#[test]
fn source_mapping_is_the_same_on_every_core_and_after_recovery() {
    let cfg = backend_cfg(
        Balance::Source,
        vec![server("a", 1), server("b", 2), server("c", 1)],
    );
    let mut core0 = BackendRuntime::new(&cfg, 0, 2);
    let mut core1 = BackendRuntime::new(&cfg, 1, 2);
    let before: Vec<usize> = (0..500).map(|n| pick(&mut core0, client(n), &[])).collect();
    let other: Vec<usize> = (0..500).map(|n| pick(&mut core1, client(n), &[])).collect();
    assert_eq!(before, other);

    core0.set_server_up(1, false);
    let during: Vec<usize> = (0..500).map(|n| pick(&mut core0, client(n), &[])).collect();
    assert!(during.iter().all(|&s| s != 1));
    core0.set_server_up(1, true);
    let after: Vec<usize> = (0..500).map(|n| pick(&mut core0, client(n), &[])).collect();
    assert_eq!(before, after);
}

#[test]
fn source_client_queues_for_its_full_server() {
    run(async {
        let be = shared(runtime(
            Balance::Source,
            vec![limited("a", 1, 1), limited("b", 1, 1)],
        ));
        let me = client(42);
        let mine = acquire(&be, me, &[], None).await.unwrap();
        // Same client again: its server is full, the other one is free, but
        // stickiness wins and it waits.
        let (fut, first) = start(&be, me, None).await;
        assert!(first.is_none());
        assert_eq!(be.borrow().queue_current(), 1);
        // Another client that maps to the free server is not held up.
        let other = (0..1000)
            .map(client)
            .find(|c| pick(&mut be.borrow_mut(), *c, &[]) != mine.server())
            .unwrap();
        let other_slot = acquire(&be, other, &[], None).await.unwrap();
        assert_ne!(other_slot.server(), mine.server());
        let server = mine.server();
        drop(mine);
        assert_eq!(fut.await.unwrap().server(), server);
    });
}

// --- server states ----------------------------------------------------------

#[test]
fn disabled_down_and_zero_weight_servers_are_skipped() {
    let mut rt = runtime(
        Balance::RoundRobin,
        vec![
            server("a", 1),
            config::Server {
                disabled: true,
                ..server("b", 1)
            },
            server("c", 0),
            server("d", 1),
        ],
    );
    rt.set_server_up(3, false);
    assert!(rt.is_usable(0));
    assert!(!rt.is_usable(1));
    assert!(!rt.is_usable(2));
    assert!(!rt.is_usable(3));
    assert!(picks(&mut rt, 20).iter().all(|&s| s == 0));

    rt.set_server_up(3, true);
    assert_eq!(counts(&picks(&mut rt, 20), 4), vec![10, 0, 0, 10]);
    rt.set_server_weight(0, 0);
    assert!(picks(&mut rt, 20).iter().all(|&s| s == 3));
    rt.set_server_disabled(1, false);
    assert_eq!(counts(&picks(&mut rt, 20), 4), vec![0, 10, 0, 10]);
}

#[test]
fn backup_used_only_when_no_primary_is_usable() {
    let mut rt = runtime(
        Balance::RoundRobin,
        vec![server("p1", 1), backup("b1"), server("p2", 1), backup("b2")],
    );
    assert_eq!(counts(&picks(&mut rt, 10), 4), vec![5, 0, 5, 0]);
    rt.set_server_up(0, false);
    assert!(picks(&mut rt, 10).iter().all(|&s| s == 2));
    rt.set_server_up(2, false);
    // Only the first usable backup, not all of them.
    assert!(picks(&mut rt, 10).iter().all(|&s| s == 1));
    rt.set_server_up(1, false);
    assert!(picks(&mut rt, 10).iter().all(|&s| s == 3));
    rt.set_server_up(2, true);
    assert!(picks(&mut rt, 10).iter().all(|&s| s == 2));
}

#[test]
fn allbackups_balances_over_every_usable_backup() {
    let mut cfg = backend_cfg(
        Balance::RoundRobin,
        vec![server("p1", 1), backup("b1"), backup("b2"), backup("b3")],
    );
    cfg.allbackups = true;
    let mut rt = BackendRuntime::new(&cfg, 0, 1);
    assert!(picks(&mut rt, 10).iter().all(|&s| s == 0));
    rt.set_server_up(0, false);
    rt.set_server_disabled(3, true);
    assert_eq!(counts(&picks(&mut rt, 10), 4), vec![0, 5, 5, 0]);
}

#[test]
fn slot_limit_is_this_cores_share() {
    let cfg = backend_cfg(
        Balance::RoundRobin,
        vec![limited("a", 1, 10), limited("b", 1, 0), server("c", 1)],
    );
    let limits: Vec<Option<u32>> = (0..3)
        .map(|core| BackendRuntime::new(&cfg, core, 3).server_slot_limit(0))
        .collect();
    assert_eq!(limits, vec![Some(4), Some(3), Some(3)]);
    let rt = BackendRuntime::new(&cfg, 0, 3);
    assert_eq!(rt.server_slot_limit(1), None, "maxconn 0 means unlimited");
    assert_eq!(rt.server_slot_limit(2), None);
}

#[test]
fn accessors_report_configuration() {
    let mut cfg = backend_cfg(Balance::First, vec![server("a", 7), server("b", 1)]);
    cfg.timeouts.connect = Some(Duration::from_secs(5));
    let rt = BackendRuntime::new(&cfg, 0, 1);
    assert_eq!(rt.name(), "be");
    assert_eq!(rt.server_count(), 2);
    assert_eq!(rt.server_name(1), "b");
    assert_eq!(rt.server_index("b"), Some(1));
    assert_eq!(rt.server_addr(0), cfg.servers[0].addr);
    assert_eq!(rt.server_weight(0), 7);
    assert_eq!(rt.balance(), Balance::First);
    assert_eq!((rt.retries(), rt.redispatch()), (3, Some(-1)));
    // `timeout queue` falls back to `timeout connect`.
    assert_eq!(rt.queue_timeout(), Some(Duration::from_secs(5)));
    cfg.timeouts.queue = Some(Duration::from_secs(9));
    let rt = BackendRuntime::new(&cfg, 0, 1);
    assert_eq!(rt.queue_timeout(), Some(Duration::from_secs(9)));
}

// --- avoid / redispatch --------------------------------------------------------

#[test]
fn avoid_picks_another_server() {
    for balance in [
        Balance::RoundRobin,
        Balance::StaticRr,
        Balance::LeastConn,
        Balance::First,
        Balance::Source,
        Balance::Random,
    ] {
        let mut rt = runtime(
            balance,
            vec![server("a", 1), server("b", 1), server("c", 1)],
        );
        for n in 0..50 {
            let from = client(n);
            let usual = pick(&mut rt, from, &[]);
            let other = pick(&mut rt, from, &[usual]);
            assert_ne!(other, usual, "{balance:?}");
            let third = pick(&mut rt, from, &[usual, other]);
            assert!(third != usual && third != other, "{balance:?}");
        }
    }
}

#[test]
fn avoid_falls_back_when_every_usable_server_failed() {
    for balance in [Balance::RoundRobin, Balance::Source, Balance::First] {
        let mut rt = runtime(balance, vec![server("a", 1), server("b", 1)]);
        rt.set_server_up(1, false);
        // b is down; a already failed but is the only one left.
        assert_eq!(pick(&mut rt, client(1), &[0]), 0, "{balance:?}");
        assert_eq!(pick(&mut rt, client(1), &[0, 1]), 0, "{balance:?}");
    }
}

#[test]
fn avoid_does_not_promote_backups() {
    let mut rt = runtime(Balance::RoundRobin, vec![server("a", 1), backup("b")]);
    assert_eq!(pick(&mut rt, client(1), &[0]), 0);
}

#[test]
fn acquire_with_avoid_redispatches() {
    run(async {
        let be = shared(runtime(
            Balance::RoundRobin,
            vec![server("a", 1), server("b", 1)],
        ));
        let first = take(&be).await;
        let failed = first.server();
        drop(first);
        for _ in 0..5 {
            let retry = acquire(&be, client(0), &[failed], None).await.unwrap();
            assert_ne!(retry.server(), failed);
        }
    });
}

// --- slots, queue -----------------------------------------------------------

#[test]
fn no_server_when_none_usable() {
    run(async {
        let be = shared(runtime(
            Balance::RoundRobin,
            vec![server("a", 1), backup("b")],
        ));
        be.borrow_mut().set_server_up(0, false);
        be.borrow_mut().set_server_disabled(1, true);
        let got = acquire(&be, client(1), &[], None).await;
        assert_eq!(got.unwrap_err(), AcquireError::NoServer);
        assert_eq!(be.borrow().queue_current(), 0);
        let empty = shared(runtime(Balance::LeastConn, vec![]));
        let got = acquire(&empty, client(1), &[], None).await;
        assert_eq!(got.unwrap_err(), AcquireError::NoServer);
    });
}

#[test]
fn slot_counts_and_releases() {
    run(async {
        let be = shared(runtime(Balance::RoundRobin, vec![server("a", 1)]));
        let s1 = take(&be).await;
        let s2 = take(&be).await;
        assert_eq!(s1.addr(), be.borrow().server_addr(0));
        let c = be.borrow().server_counters(0);
        assert_eq!((c.current_conns, c.max_conns, c.total_selected), (2, 2, 2));
        drop(s1);
        drop(s2);
        let _s3 = take(&be).await;
        let c = be.borrow().server_counters(0);
        assert_eq!((c.current_conns, c.max_conns, c.total_selected), (1, 2, 3));
    });
}

#[test]
fn queued_waiter_gets_released_slot() {
    run(async {
        let be = shared(runtime(Balance::RoundRobin, vec![limited("a", 1, 1)]));
        let held = take(&be).await;
        let be2 = Rc::clone(&be);
        let waiter = glommio::spawn_local(async move {
            acquire(&be2, client(9), &[], None)
                .await
                .map(|slot| slot.server())
        });
        while be.borrow().queue_current() == 0 {
            glommio::executor().yield_now().await;
        }
        drop(held);
        assert_eq!(waiter.await, Ok(0));
        let rt = be.borrow();
        assert_eq!(rt.server_counters(0).current_conns, 0);
        assert_eq!(rt.server_counters(0).total_selected, 2);
        assert_eq!((rt.queue_current(), rt.queue_max()), (0, 1));
    });
}

#[test]
fn queue_is_fifo() {
    run(async {
        let be = shared(runtime(
            Balance::RoundRobin,
            vec![limited("a", 1, 1), limited("b", 1, 1)],
        ));
        let mut held = vec![take(&be).await, take(&be).await];
        let (w1, r1) = start(&be, client(1), None).await;
        let (w2, r2) = start(&be, client(2), None).await;
        let (mut w3, r3) = start(&be, client(3), None).await;
        assert!(r1.is_none() && r2.is_none() && r3.is_none());
        assert_eq!(be.borrow().queue_max(), 3);

        held.pop();
        let s1 = w1.await.unwrap();
        // A newcomer does not overtake the queue.
        let (mut w4, r4) = start(&be, client(4), None).await;
        assert!(r4.is_none());
        held.pop();
        let s2 = w2.await.unwrap();
        assert!(poll_once(&mut w3).await.is_none());
        drop(s1);
        let _s3 = w3.await.unwrap();
        assert!(poll_once(&mut w4).await.is_none());
        drop(s2);
        let _s4 = w4.await.unwrap();
        assert_eq!(be.borrow().queue_current(), 0);
    });
}

#[test]
fn queue_timeout_returns_error_and_leaves_queue() {
    run(async {
        let be = shared(runtime(Balance::LeastConn, vec![limited("a", 1, 1)]));
        let held = take(&be).await;
        let got = acquire(&be, client(1), &[], Some(Duration::from_millis(20))).await;
        assert_eq!(got.unwrap_err(), AcquireError::QueueTimeout);
        assert_eq!(be.borrow().queue_current(), 0);
        drop(held);
        // Nothing was handed to the timed-out waiter.
        assert_eq!(be.borrow().server_counters(0).current_conns, 0);
        assert_eq!(take(&be).await.server(), 0);
    });
}

#[test]
fn dropped_waiter_leaves_queue_without_stealing_wakeup() {
    run(async {
        let be = shared(runtime(Balance::RoundRobin, vec![limited("a", 1, 1)]));
        let held = take(&be).await;
        let (w1, _) = start(&be, client(1), None).await;
        let (w2, r2) = start(&be, client(2), None).await;
        assert!(r2.is_none());
        assert_eq!(be.borrow().queue_current(), 2);
        drop(w1);
        assert_eq!(be.borrow().queue_current(), 1);
        drop(held);
        assert_eq!(w2.await.unwrap().server(), 0);
    });
}

#[test]
fn slot_granted_to_dropped_waiter_passes_to_next() {
    run(async {
        let be = shared(runtime(Balance::RoundRobin, vec![limited("a", 1, 1)]));
        let held = take(&be).await;
        let (w1, _) = start(&be, client(1), None).await;
        let (w2, _) = start(&be, client(2), None).await;
        // The slot goes to w1, which is dropped before it runs again.
        drop(held);
        assert_eq!(be.borrow().server_counters(0).current_conns, 1);
        drop(w1);
        let s2 = w2.await.unwrap();
        assert_eq!(s2.server(), 0);
        assert_eq!(be.borrow().server_counters(0).current_conns, 1);
        drop(s2);
        assert_eq!(be.borrow().server_counters(0).current_conns, 0);
    });
}

#[test]
fn queued_waiters_fail_when_last_server_goes_down() {
    run(async {
        let be = shared(runtime(Balance::RoundRobin, vec![limited("a", 1, 1)]));
        let held = take(&be).await;
        let (w1, _) = start(&be, client(1), None).await;
        be.borrow_mut().set_server_up(0, false);
        assert_eq!(w1.await.unwrap_err(), AcquireError::NoServer);
        assert_eq!(be.borrow().queue_current(), 0);
        drop(held);
    });
}

#[test]
fn server_coming_up_serves_queued_waiter() {
    run(async {
        let be = shared(runtime(
            Balance::RoundRobin,
            vec![limited("a", 1, 1), server("b", 1)],
        ));
        be.borrow_mut().set_server_up(1, false);
        let held = take(&be).await;
        let (w1, r1) = start(&be, client(1), None).await;
        assert!(r1.is_none());
        be.borrow_mut().set_server_up(1, true);
        assert_eq!(w1.await.unwrap().server(), 1);
        drop(held);
    });
}

#[test]
fn waiter_avoiding_the_free_server_lets_the_next_one_through() {
    run(async {
        let be = shared(runtime(
            Balance::RoundRobin,
            vec![limited("a", 1, 1), limited("b", 1, 1)],
        ));
        let a = take(&be).await;
        let b = take(&be).await;
        let (ia, ib) = (a.server(), b.server());
        // w1 failed on `ia` before and waits for the other server.
        let avoid = [ia];
        let mut w1: Acquiring = Box::pin(acquire(&be, client(1), &avoid, None));
        assert!(poll_once(&mut w1).await.is_none());
        let (w2, _) = start(&be, client(2), None).await;
        drop(a);
        assert_eq!(w2.await.unwrap().server(), ia);
        assert!(poll_once(&mut w1).await.is_none());
        drop(b);
        assert_eq!(w1.await.unwrap().server(), ib);
    });
}

#[test]
fn health_changes_record_when_and_empty_the_backend() {
    let mut rt = runtime(Balance::RoundRobin, vec![server("a", 1), backup("b")]);
    let born = rt.server_last_change(0);
    assert!(rt.has_usable_server());
    rt.set_server_up(0, true);
    assert_eq!(rt.server_last_change(0), born, "no change, no new time");
    rt.set_server_up(0, false);
    let down_at = rt.server_last_change(0);
    assert!(down_at >= born);
    assert!(rt.has_usable_server(), "the backup takes over");
    assert!(rt.is_server_backup(1) && !rt.is_server_backup(0));
    rt.set_server_up(1, false);
    assert!(!rt.has_usable_server());
    assert_eq!(
        rt.pick(IpAddr::V4(Ipv4Addr::LOCALHOST), PickHint::default(), &[]),
        Pick::NoServer
    );
    rt.set_server_up(0, false);
    assert_eq!(rt.server_last_change(0), down_at);
}

// --- HTTP balancing: hashes, random(N), persistence ---------------------------

fn hashed_runtime(
    balance: Balance,
    hash_type: config::HashType,
    servers: Vec<config::Server>,
) -> BackendRuntime {
    let mut cfg = backend_cfg(balance, servers);
    cfg.balance_params.hash_type = hash_type;
    BackendRuntime::new(&cfg, 0, 1)
}

fn pick_hash(rt: &mut BackendRuntime, hash: u64) -> usize {
    let hint = PickHint {
        hash: Some(hash),
        sticky: None,
    };
    match rt.pick(IpAddr::V4(Ipv4Addr::LOCALHOST), hint, &[]) {
        Pick::Server(idx) => idx,
        other => panic!("expected a server, got {other:?}"),
    }
}

fn keys() -> Vec<u64> {
    (0..20_000u64)
        .map(|k| crate::rules::hash_bytes(&k.to_le_bytes()))
        .collect()
}

#[test]
fn same_key_same_server_and_keys_spread() {
    for hash_type in [config::HashType::MapBased, config::HashType::Consistent] {
        let servers: Vec<_> = ["a", "b", "c", "d"].iter().map(|n| server(n, 1)).collect();
        let mut rt = hashed_runtime(Balance::UrlParam, hash_type, servers);
        let keys = keys();
        let first: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut rt, k)).collect();
        let again: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut rt, k)).collect();
        assert_eq!(first, again, "{hash_type:?}");
        let spread = counts(&first, 4);
        // Each of 4 servers gets a fair share (25% +- 7 points).
        for c in &spread {
            assert!((3_600..=6_400).contains(c), "{hash_type:?}: {spread:?}");
        }
    }
}

#[test]
fn consistent_ring_moves_about_one_nth_of_keys_when_a_server_leaves() {
    let n = 5;
    let names = ["a", "b", "c", "d", "e"];
    let servers: Vec<_> = names.iter().map(|s| server(s, 1)).collect();
    let mut consistent =
        hashed_runtime(Balance::Uri, config::HashType::Consistent, servers.clone());
    let mut map_based = hashed_runtime(Balance::Uri, config::HashType::MapBased, servers);
    let keys = keys();
    let before_c: Vec<usize> = keys
        .iter()
        .map(|&k| pick_hash(&mut consistent, k))
        .collect();
    let before_m: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut map_based, k)).collect();
    consistent.set_server_up(2, false);
    map_based.set_server_up(2, false);
    let after_c: Vec<usize> = keys
        .iter()
        .map(|&k| pick_hash(&mut consistent, k))
        .collect();
    let after_m: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut map_based, k)).collect();
    let moved = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    let moved_c = moved(&before_c, &after_c);
    // Exactly the keys of the removed server move, and they are about 1/N.
    let owned = before_c.iter().filter(|&&s| s == 2).count();
    assert_eq!(moved_c, owned);
    let share = moved_c as f64 / keys.len() as f64;
    assert!(
        (share - 1.0 / n as f64).abs() < 0.06,
        "consistent moved {share}"
    );
    // Map-based hashing reshuffles far more.
    let share_m = moved(&before_m, &after_m) as f64 / keys.len() as f64;
    assert!(share_m > 0.5, "map-based moved {share_m}");
    // And the server coming back takes its own keys back.
    consistent.set_server_up(2, true);
    let back: Vec<usize> = keys
        .iter()
        .map(|&k| pick_hash(&mut consistent, k))
        .collect();
    assert_eq!(back, before_c);
}

#[test]
fn consistent_ring_honours_weights() {
    let servers = vec![server("a", 1), server("b", 3)];
    let mut rt = hashed_runtime(Balance::Hdr, config::HashType::Consistent, servers);
    let picks: Vec<usize> = keys().iter().map(|&k| pick_hash(&mut rt, k)).collect();
    let c = counts(&picks, 2);
    let share_b = c[1] as f64 / picks.len() as f64;
    assert!((share_b - 0.75).abs() < 0.07, "{c:?}");
}

#[test]
fn hash_algorithms_without_a_key_balance_round_robin() {
    let servers: Vec<_> = ["a", "b", "c"].iter().map(|n| server(n, 1)).collect();
    let mut rt = hashed_runtime(Balance::UrlParam, config::HashType::MapBased, servers);
    assert_eq!(picks(&mut rt, 6), vec![0, 1, 2, 0, 1, 2]);
}

#[test]
fn sticky_server_is_used_while_usable() {
    let servers = vec![server("a", 1), limited("b", 1, 1), server("c", 1)];
    let mut rt = runtime(Balance::RoundRobin, servers);
    let to = |s| PickHint {
        hash: None,
        sticky: Some(s),
    };
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for _ in 0..5 {
        assert_eq!(rt.pick(local, to(1), &[]), Pick::Server(1));
    }
    // Full: wait for it rather than break persistence.
    rt.take_slot(1);
    assert_eq!(rt.pick(local, to(1), &[]), Pick::Full);
    rt.release_slot(1);
    // Down: balance normally.
    rt.set_server_up(1, false);
    let got: Vec<Pick> = (0..4).map(|_| rt.pick(local, to(1), &[])).collect();
    assert!(
        got.iter().all(|p| matches!(p, Pick::Server(0 | 2))),
        "{got:?}"
    );
}

#[test]
fn random_of_two_prefers_the_less_loaded() {
    let servers: Vec<_> = ["a", "b", "c", "d"].iter().map(|n| server(n, 1)).collect();
    let mut cfg = backend_cfg(Balance::Random, servers);
    cfg.balance_params.draws = 2;
    let mut rt = BackendRuntime::new(&cfg, 0, 1);
    // Load server 0 heavily: with two draws it can only win when drawn
    // twice (1/16 of picks), against 1/4 with one draw.
    for _ in 0..50 {
        rt.take_slot(0);
    }
    let picked = picks(&mut rt, 4000);
    let zero = picked.iter().filter(|&&s| s == 0).count();
    assert!(zero < 500, "server 0 picked {zero} times of 4000");
    assert!(picked.contains(&0), "still reachable");
}

#[test]
fn a_runtime_weight_change_moves_only_that_servers_keys_on_the_ring() {
    let servers: Vec<_> = ["a", "b", "c", "d"].iter().map(|s| server(s, 2)).collect();
    let mut rt = hashed_runtime(Balance::Uri, config::HashType::Consistent, servers);
    let keys = keys();
    let before: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut rt, k)).collect();
    rt.set_server_weight(1, 4);
    let after: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut rt, k)).collect();
    let mut gained = 0;
    for (b, a) in before.iter().zip(&after) {
        if b != a {
            // Every key that moved went to the server whose weight grew.
            assert_eq!(*a, 1);
            gained += 1;
        }
    }
    assert!(gained > 0);
    // Draining it (runtime `state drain`) hands back exactly its keys.
    rt.set_server_drain(1, true);
    let drained: Vec<usize> = keys.iter().map(|&k| pick_hash(&mut rt, k)).collect();
    for (a, d) in after.iter().zip(&drained) {
        assert_eq!(a != d, *a == 1);
    }
}

#[test]
fn a_drained_server_still_takes_its_persistent_clients() {
    let mut rt = runtime(Balance::RoundRobin, vec![server("a", 1), server("b", 1)]);
    rt.set_server_drain(0, true);
    let sticky = PickHint {
        hash: None,
        sticky: Some(0),
    };
    assert_eq!(rt.pick(client(1).ip(), sticky, &[]), Pick::Server(0));
    for n in 0..4 {
        assert_eq!(
            rt.pick(client(n).ip(), PickHint::default(), &[]),
            Pick::Server(1)
        );
    }
    rt.set_server_disabled(0, true);
    assert_eq!(rt.pick(client(1).ip(), sticky, &[]), Pick::Server(1));
}
