//! Memory of a process tree, read from `/proc` (Linux).

use serde::{Deserialize, Serialize};
use std::fs;
use std::io;

/// Resident memory of a process and all its descendants, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Current resident set (`VmRSS`), summed over the tree.
    pub rss_kib: u64,
    /// Peak resident set (`VmHWM`), summed over the tree.
    pub hwm_kib: u64,
    /// Number of processes in the tree.
    pub processes: usize,
}

/// Reads `VmRSS` and `VmHWM` of `pid` and its live descendants.
///
/// The Python SDK runs its heartbeat in a child process, so the whole tree is what a worker costs.
pub fn tree_memory(pid: u32) -> io::Result<Memory> {
    let mut total = Memory::default();
    for p in tree(pid)? {
        // A child may exit between the listing and the read: skip it.
        if let Ok((rss, hwm)) = memory_of(p) {
            total.rss_kib += rss;
            total.hwm_kib += hwm;
            total.processes += 1;
        }
    }
    if total.processes == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("process {pid} is gone")));
    }
    Ok(total)
}

/// CPU time (user + system) used so far by `pid` and its live descendants.
pub fn tree_cpu(pid: u32) -> io::Result<std::time::Duration> {
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code, reason = "libc::sysconf has no safe wrapper in std")]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut total = 0u64;
    for p in tree(pid)? {
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        total += cpu_ticks(&stat).unwrap_or(0);
    }
    Ok(std::time::Duration::from_secs_f64(total as f64 / ticks))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `(VmRSS, VmHWM)` of one process, in KiB.
pub fn memory_of(pid: u32) -> io::Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok((status_field(&status, "VmRSS:"), status_field(&status, "VmHWM:")))
}

fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `pid` followed by its descendants (found by scanning `/proc/*/stat` for parent ids).
pub fn tree(pid: u32) -> io::Result<Vec<u32>> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // The command name is in parentheses and may hold spaces: parse after the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_children() {
        let me = std::process::id();
        let m = tree_memory(me).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib, "{m:?}");
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let t = tree(me).unwrap();
        assert!(t.contains(&child.id()), "{t:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn reads_cpu_time() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 1 0 5 1000 10";
        assert_eq!(cpu_ticks(line), Some(280));
        let start = tree_cpu(std::process::id()).unwrap();
        // Spin until the kernel has counted some of it (one tick is 10 ms of CPU; on a loaded
        // machine 60 ms of wall time may hold less than that).
        let t = std::time::Instant::now();
        let mut now = start;
        while now <= start && t.elapsed() < std::time::Duration::from_secs(10) {
            for _ in 0..10_000 {
                std::hint::black_box(t.elapsed());
            }
            now = tree_cpu(std::process::id()).unwrap();
        }
        assert!(now > start, "no CPU time counted after {:?} of spinning", t.elapsed());
    }

    #[test]
    fn parses_status_fields() {
        let s = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t   999 kB\n";
        assert_eq!(status_field(s, "VmRSS:"), 999);
        assert_eq!(status_field(s, "VmHWM:"), 1234);
        assert_eq!(status_field(s, "VmSwap:"), 0);
    }
}
