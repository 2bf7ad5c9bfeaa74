//! CPU time of a process from /proc/<pid>/stat: utime + stime over all its
//! threads, in clock ticks. Read before and after a run; the difference is
//! the CPU the process spent on that run, whatever the wall clock says.

use anyhow::{bail, Context, Result};
use std::time::Duration;

/// utime + stime of one process at one instant, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub fn total(self) -> u64 {
        self.user + self.system
    }

    /// CPU time spent between `earlier` and `self`.
    pub fn since(self, earlier: CpuTicks) -> Duration {
        let ticks = self.total().saturating_sub(earlier.total());
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
    }
}

/// sysconf(_SC_CLK_TCK); 100 on every Linux in practice, but not assumed.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Parses the content of /proc/<pid>/stat. The command name (field 2) is in
/// parentheses and may itself contain spaces and ')', so fields are counted
/// from the last ')'; utime and stime are fields 14 and 15 of proc(5).
pub fn parse_stat(content: &str) -> Result<CpuTicks> {
    let close = content
        .rfind(')')
        .context("no ')' after the command name")?;
    // After ") " come fields 3.. (state first), so field N is at index N-3.
    let fields: Vec<&str> = content[close + 1..].split_whitespace().collect();
    if fields.len() < 13 {
        bail!("only {} fields after the command name", fields.len());
    }
    let field = |n: usize| -> Result<u64> {
        fields[n - 3]
            .parse()
            .with_context(|| format!("field {n} is not a number: {:?}", fields[n - 3]))
    };
    Ok(CpuTicks {
        user: field(14)?,
        system: field(15)?,
    })
}

pub fn read_pid(pid: u32) -> Result<CpuTicks> {
    let path = format!("/proc/{pid}/stat");
    let content = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&content).with_context(|| format!("parsing {path}"))
}

pub fn read_self() -> Result<CpuTicks> {
    read_pid(std::process::id())
}

/// One CPU's counters from /proc/stat, in clock ticks, across all
/// processes: compared with the proxy's own ticks it shows whether anything
/// else ran on the proxy's core during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreTicks {
    pub busy: u64,
    pub total: u64,
}

impl CoreTicks {
    /// Busy time between `earlier` and `self`, every process and softirq
    /// included.
    pub fn busy_time_since(self, earlier: CoreTicks) -> Duration {
        let ticks = self.busy.saturating_sub(earlier.busy);
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
    }

    /// Fraction of the interval the core was busy (0.0..=1.0).
    pub fn busy_since(self, earlier: CoreTicks) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// Parses the `cpuN` line of /proc/stat: user nice system idle iowait irq
/// softirq steal ...; idle, iowait and steal are the not-busy part. guest times
/// are already included in user/nice, so they are not added again.
pub fn parse_core(proc_stat: &str, cpu: usize) -> Result<CoreTicks> {
    let values = core_values(proc_stat, cpu)?;
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    // Steal is time the hypervisor gave this vCPU to someone else: not work
    // done here, so not busy, but still part of the interval.
    let steal = values.get(7).copied().unwrap_or(0);
    Ok(CoreTicks {
        busy: total - idle - steal,
        total,
    })
}

/// The first eight counters of the `cpuN` line (at least five).
fn core_values(proc_stat: &str, cpu: usize) -> Result<Vec<u64>> {
    let label = format!("cpu{cpu}");
    let line = proc_stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))
        .with_context(|| format!("no {label} line in /proc/stat"))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad {label} line: {line:?}"))?;
    if values.len() < 5 {
        bail!("short {label} line: {line:?}");
    }
    Ok(values)
}

/// (steal, total) ticks of one CPU: on a virtual machine, the time the
/// hypervisor ran someone else's vCPU there. A latency tail measured while
/// a core was stolen from says more about the host than about the proxy.
pub fn read_steal(cpu: usize) -> Result<(u64, u64)> {
    let content = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_steal(&content, cpu)
}

pub fn parse_steal(proc_stat: &str, cpu: usize) -> Result<(u64, u64)> {
    let values = core_values(proc_stat, cpu)?;
    Ok((values.get(7).copied().unwrap_or(0), values.iter().sum()))
}

pub fn read_core(cpu: usize) -> Result<CoreTicks> {
    let content = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_core(&content, cpu)
}

/// Waits, at most `max_wait`, for a `window` in which every CPU in `cpus`
/// was busy less than `threshold` (0.0..=1.0) of the time: on a shared
/// machine, other tenants' work on these cores skews both throughput and
/// CPU per GiB. Returns whether such a window was seen.
pub fn wait_for_quiet(
    cpus: &[usize],
    threshold: f64,
    window: Duration,
    max_wait: Duration,
) -> Result<bool> {
    let deadline = std::time::Instant::now() + max_wait;
    loop {
        let before = cpus
            .iter()
            .map(|&c| read_core(c))
            .collect::<Result<Vec<_>>>()?;
        std::thread::sleep(window);
        let mut quiet = true;
        for (&cpu, earlier) in cpus.iter().zip(before) {
            quiet &= read_core(cpu)?.busy_since(earlier) < threshold;
        }
        if quiet {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_lines_are_found_and_idle_excluded() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                    cpu0 4 0 6 50 0 0 0 0 0 0\n\
                    cpu1 6 1 4 40 10 2 3 4 0 0\n\
                    cpu10 1 1 1 1 1 1 1 1 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(
            parse_core(stat, 0).unwrap(),
            CoreTicks {
                busy: 10,
                total: 60
            }
        );
        assert_eq!(
            parse_core(stat, 1).unwrap(),
            CoreTicks {
                busy: 16,
                total: 70
            }
        );
        assert_eq!(
            parse_core(stat, 10).unwrap(),
            CoreTicks { busy: 5, total: 8 }
        );
        assert!(parse_core(stat, 2).is_err());
        assert_eq!(parse_steal(stat, 1).unwrap(), (4, 70));
        assert_eq!(parse_steal(stat, 0).unwrap(), (0, 60));
        let a = CoreTicks {
            busy: 10,
            total: 100,
        };
        let b = CoreTicks {
            busy: 40,
            total: 200,
        };
        assert!((b.busy_since(a) - 0.3).abs() < 1e-9);
        assert_eq!(a.busy_since(a), 0.0);
        let hz = clock_ticks_per_second();
        let c = CoreTicks {
            busy: 10 + 3 * hz,
            total: 100 + 4 * hz,
        };
        assert_eq!(c.busy_time_since(a), Duration::from_secs(3));
    }

    #[test]
    fn this_machine_has_a_cpu0_line() {
        let core = read_core(0).unwrap();
        assert!(core.total >= core.busy);
    }

    // A real line from proc(5) layout with a hostile command name.
    const SAMPLE: &str = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 1510 0 0 0 \
        137 29 0 0 20 0 3 0 123456 1000000 500 18446744073709551615 1 1 0 0 0 0 0 \
        4096 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn fields_are_counted_from_the_last_paren() {
        let ticks = parse_stat(SAMPLE).unwrap();
        assert_eq!(
            ticks,
            CpuTicks {
                user: 137,
                system: 29
            }
        );
        assert_eq!(ticks.total(), 166);
    }

    #[test]
    fn truncated_or_garbled_lines_are_errors() {
        assert!(parse_stat("4242 (x) S 1 2 3").is_err());
        assert!(parse_stat("no parens at all 1 2 3 4 5 6 7 8 9 10 11 12 13 14").is_err());
        let garbled = SAMPLE.replace(" 137 ", " x7 ");
        assert!(parse_stat(&garbled).is_err());
    }

    #[test]
    fn reads_this_process_and_time_only_goes_forward() {
        let before = read_self().unwrap();
        // Burn a little CPU so there is something to count.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = read_self().unwrap();
        assert!(after.total() >= before.total());
        assert!(after.since(before) <= Duration::from_secs(3600));
    }

    #[test]
    fn tick_difference_converts_with_clk_tck() {
        let hz = clock_ticks_per_second();
        let a = CpuTicks { user: 0, system: 0 };
        let b = CpuTicks {
            user: hz,
            system: hz,
        };
        assert_eq!(b.since(a), Duration::from_secs(2));
        assert_eq!(a.since(b), Duration::ZERO);
    }
}
