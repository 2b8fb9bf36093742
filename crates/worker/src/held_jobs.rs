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

    /// `"a,b,c"`, or `None` when no job is held.
    pub(crate) fn csv(&self) -> Option<String> {
        let set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (!set.is_empty()).then(|| set.iter().map(String::as_str).collect::<Vec<_>>().join(","))
    }
}
