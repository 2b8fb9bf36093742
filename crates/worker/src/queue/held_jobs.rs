//! The ids of jobs this worker holds: taken and not yet answered (the handler may have ended
//! while the result is still being delivered). The heartbeat reports them, so the platform
//! does not re-queue a job whose result is on its way.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

/// Shared set of held job ids, read by the heartbeat thread. A job enters when it is taken
/// and leaves when its result is accepted (or given up).
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldJobs(Arc<Mutex<BTreeSet<String>>>);

impl HeldJobs {
    pub(crate) fn insert(&self, id: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned());
    }

    pub(crate) fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    /// The held ids, in order (a snapshot: the heartbeat sends them without holding the lock).
    pub(crate) fn ids(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    /// A short description for a log line: the count and at most the first 5 ids (a worker may
    /// hold thousands of jobs; a log line must not carry them all).
    pub(crate) fn summary(&self) -> String {
        let set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let shown: Vec<&str> = set.iter().take(5).map(String::as_str).collect();
        let more = if set.len() > shown.len() { ", …" } else { "" };
        format!("{} job(s): {}{more}", set.len(), shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_at_most_five_ids() {
        let held = HeldJobs::default();
        assert_eq!(held.summary(), "0 job(s): ");
        for i in 0..1000 {
            held.insert(&format!("job-{i:04}"));
        }
        assert_eq!(held.summary(), "1000 job(s): job-0000, job-0001, job-0002, job-0003, job-0004, …");
        assert_eq!(held.ids().len(), 1000);
        held.remove("job-0000");
        assert_eq!(held.ids()[0], "job-0001");
    }
}
