//! The ids of jobs this worker holds: taken and not yet answered. The heartbeat reports them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

/// Shared set of job ids, read by the heartbeat thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunningJobs(Arc<Mutex<BTreeSet<String>>>);

impl RunningJobs {
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
