//! File descriptor accounting for the data path. Alone in its test binary
//! because it counts the process's fds and lowers RLIMIT_NOFILE.

mod net_support;

use net_support::*;
use percore::net::{PipeError, PipePool, TunnelEnd};

const MIB: u64 = 1 << 20;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn fds_and_pipes() {
    executor().run(async {
        // Warm up: glommio opens some fds lazily on first use.
        {
            let warmup = PipePool::new(64 * 1024, 4);
            tunnel(
                &settings(true),
                &warmup,
                |s| exchange(s, 1, MIB, 2),
                |s| exchange(s, 2, MIB, 1),
            )
            .await;
        }
        let before = open_fds();

        let pipes = PipePool::new(64 * 1024, 64);
        let mut spliced = 0;
        for i in 0..100u64 {
            let (report, _, _) = tunnel(
                &settings(true),
                &pipes,
                move |s| exchange(s, i, MIB, i + 1000),
                move |s| exchange(s, i + 1000, MIB, i),
            )
            .await;
            assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
            spliced += report.spliced;
        }
        assert!(spliced > 0, "no tunnel spliced");
        let stats = pipes.stats();
        assert_eq!(stats.in_use, 0);
        // Tunnels ran one after another, each needing at most two pipes at
        // once: every later tunnel reused them.
        assert!(stats.created <= 2, "{stats:?}");
        assert_eq!(stats.idle as u64, stats.created);
        drop(pipes);
        assert_eq!(open_fds(), before, "fds leaked over 100 tunnels");

        // Pipe creation hitting EMFILE is an error the caller can act on.
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) };
        let highest = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap();
        let tight = libc::rlimit {
            rlim_cur: highest + 1 + 8,
            rlim_max: old.rlim_max,
        };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &tight) }, 0);
        let pool = PipePool::new(64 * 1024, 100_000);
        let mut held = Vec::new();
        let err = loop {
            match pool.get() {
                Ok(p) => held.push(p),
                Err(e) => break e,
            }
            assert!(held.len() < 10_000, "RLIMIT_NOFILE not enforced?");
        };
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
        match err {
            PipeError::Create(e) => assert_eq!(e.raw_os_error(), Some(libc::EMFILE)),
            other => panic!("expected EMFILE, got {other}"),
        }
    });
}
