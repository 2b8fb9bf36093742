//! Signals to the processes `cargo runpod dev` started (kill(2)), and the one it waits for.

use tokio::sync::watch;

/// Sends `sig` to the process `pid`.
#[allow(unsafe_code, reason = "kill(2) has no wrapper in std")]
pub(crate) fn kill(pid: u32, sig: i32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a process that is
    // already gone only yields ESRCH.
    unsafe { libc::kill(pid, sig) };
}

/// Sends `sig` to every process of the group `pgid` (a child started as a group leader).
#[allow(unsafe_code, reason = "kill(2) has no wrapper in std")]
pub(crate) fn kill_group(pgid: u32, sig: i32) {
    let Ok(pgid) = i32::try_from(pgid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: as in `kill`; a negative pid names the process group.
    unsafe { libc::kill(-pgid, sig) };
}

/// How many SIGINTs (Ctrl-C) and SIGTERMs came so far, readable from any task: the first stops
/// gracefully, a second one stops at once.
pub(crate) fn stop_signals() -> std::io::Result<watch::Receiver<u32>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (tx, rx) = watch::channel(0);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = int.recv() => {}
                Some(()) = term.recv() => {}
                else => return,
            }
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
}
