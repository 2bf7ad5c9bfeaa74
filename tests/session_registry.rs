//! What the session registry costs the data path, counted: once the slab
//! has grown to the core's high-water mark, registering and removing a
//! connection, and the per-request calls (server set and cleared, the
//! killed check, a connect that is ready at once raced with the kill),
//! allocate nothing. A counting global allocator (per thread, so other
//! tests running meanwhile do not count) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use percore::shard::sessions::Sessions;

struct Counting;

thread_local! {
    // `const` and without destructor: usable from inside the allocator.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread may be tearing its locals down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counting touches a plain thread-local integer and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn connections_and_requests_allocate_nothing_once_warm() {
    let sessions = std::rc::Rc::new(Sessions::new(3));
    let client: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    // Warm up to 64 sessions at once, the high-water mark.
    let warm: Vec<_> = (0..64)
        .map(|_| sessions.register(0, 0, client, -1))
        .collect();
    drop(warm);
    futures_lite::future::block_on(sessions.unless_killed(
        sessions.register(0, 0, client, -1).id(),
        std::pin::pin!(async {}),
    ));

    let mut live = Vec::with_capacity(64);
    let before = allocations();
    for round in 0..10_000usize {
        if live.len() == 64 {
            live.clear();
        }
        let s = sessions.register(0, round % 4, client, -1);
        let id = s.id();
        sessions.set_backend(id, 1);
        for _request in 0..4 {
            let ready = std::pin::pin!(async { 1 });
            let ready = sessions.unless_killed(id, ready);
            assert_eq!(futures_lite::future::block_on(ready), Some(1));
            sessions.set_server(id, 1, round % 3, None);
            sessions.clear_server(id);
            assert!(!sessions.is_killed(id));
        }
        live.push(s);
    }
    let spent = allocations() - before;
    assert_eq!(spent, 0, "allocations in 10000 connections x 4 requests");
    assert_eq!(sessions.len(), live.len());
}
