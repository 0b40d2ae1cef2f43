//! The tunnel registry: which tunnel ids wait for their computer and which are joined.
//!
//! Generic over what a joining computer hands to the waiting tunnel, so that it depends on
//! nothing else in the relay and can be tested without sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use cable_proto::ids::TunnelId;
use tokio::sync::oneshot;

use crate::metrics::RejectReason;

#[derive(Debug)]
enum Slot<P> {
    /// Waiting for its computer; the sender hands the computer's side to the tunnel task.
    Pending(oneshot::Sender<P>),
    /// Claimed by a `connect` (kept so duplicates and second joins are refused).
    Joined,
}

/// Tunnel ids in use, and how many of them are still waiting.
#[derive(Debug)]
pub(crate) struct Registry<P> {
    tunnels: Mutex<HashMap<TunnelId, Slot<P>>>,
    pending: AtomicUsize,
}

impl<P> Registry<P> {
    pub(crate) fn new() -> Self {
        Self {
            tunnels: Mutex::new(HashMap::new()),
            pending: AtomicUsize::new(0),
        }
    }

    fn tunnels(&self) -> MutexGuard<'_, HashMap<TunnelId, Slot<P>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removals), so a poisoned lock is still usable.
        match self.tunnels.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds a waiting tunnel unless its id is in use or `max_pending` tunnels already wait.
    pub(crate) fn register(
        &self,
        id: TunnelId,
        max_pending: usize,
    ) -> Result<oneshot::Receiver<P>, RejectReason> {
        let mut map = self.tunnels();
        if map.contains_key(&id) {
            return Err(RejectReason::DuplicateTunnel);
        }
        // Checked under the map lock, so concurrent `new`s cannot overshoot the limit.
        if self.pending.load(Ordering::Relaxed) >= max_pending {
            return Err(RejectReason::PendingLimit);
        }
        let (tx, rx) = oneshot::channel();
        map.insert(id, Slot::Pending(tx));
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(rx)
    }

    /// Claims a waiting tunnel for a joining computer.
    pub(crate) fn claim(&self, id: &TunnelId) -> Result<oneshot::Sender<P>, RejectReason> {
        let mut map = self.tunnels();
        match map.get_mut(id) {
            None => Err(RejectReason::UnknownTunnel),
            Some(Slot::Joined) => Err(RejectReason::AlreadyJoined),
            Some(slot) => match std::mem::replace(slot, Slot::Joined) {
                Slot::Pending(tx) => Ok(tx),
                Slot::Joined => Err(RejectReason::AlreadyJoined),
            },
        }
    }

    /// Frees a tunnel id.
    pub(crate) fn unregister(&self, id: &TunnelId) {
        self.tunnels().remove(id);
    }

    /// A registered tunnel stopped waiting (its computer joined, or it failed first).
    pub(crate) fn left_pending(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }

    /// Tunnels waiting for their computer.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: TunnelId = TunnelId::from_bytes([1; 16]);
    const B: TunnelId = TunnelId::from_bytes([2; 16]);

    #[test]
    fn register_claim_and_refusals() {
        let registry = Registry::<u8>::new();
        let rx = registry.register(A, 2).unwrap();
        assert_eq!(
            registry.register(A, 2).unwrap_err(),
            RejectReason::DuplicateTunnel
        );
        assert_eq!(registry.claim(&B).unwrap_err(), RejectReason::UnknownTunnel);
        let tx = registry.claim(&A).unwrap();
        assert_eq!(registry.claim(&A).unwrap_err(), RejectReason::AlreadyJoined);
        // A joined id stays taken until the tunnel unregisters it.
        assert_eq!(
            registry.register(A, 2).unwrap_err(),
            RejectReason::DuplicateTunnel
        );
        tx.send(7).unwrap();
        assert_eq!(rx.blocking_recv().unwrap(), 7);
        registry.left_pending();
        registry.unregister(&A);
        assert!(registry.register(A, 2).is_ok());
    }

    #[test]
    fn pending_limit_counts_waiting_tunnels_only() {
        let registry = Registry::<()>::new();
        let _a = registry.register(A, 1).unwrap();
        assert_eq!(
            registry.register(B, 1).unwrap_err(),
            RejectReason::PendingLimit
        );
        assert_eq!(registry.pending(), 1);
        let _tx = registry.claim(&A).unwrap();
        registry.left_pending();
        assert_eq!(registry.pending(), 0);
        assert!(registry.register(B, 1).is_ok());
    }
}
