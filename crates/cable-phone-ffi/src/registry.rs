//! The adapters the binding hands out, found again when the app hands them back.
//!
//! An app passes an async authenticator or advertiser to a session wrapped in the adapter
//! from [`async_authenticator`](crate::async_authenticator) or
//! [`async_advertiser`](crate::async_advertiser), typed as the blocking trait so that the
//! session constructors stay the same. The session looks the trait object up here: when it
//! is one of those adapters, the session awaits the app's coroutine directly (no thread of
//! the binding waits on it, and cancelling the session cancels the coroutine) instead of
//! calling the blocking trait on the binding's blocking pool.

use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Adapters alive now, by the address of their data. Short: one entry per adapter the app
/// holds, removed when the adapter is dropped.
pub(crate) struct Registry<T> {
    entries: Mutex<Vec<(usize, Weak<T>)>>,
}

/// The address a trait object and the adapter behind it share.
fn address<T: ?Sized>(object: &Arc<T>) -> usize {
    Arc::as_ptr(object).cast::<()>() as usize
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Self {
        Registry {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Records `adapter` (called once, right after it is made).
    pub(crate) fn insert(&self, adapter: &Arc<T>) {
        self.lock()
            .push((address(adapter), Arc::downgrade(adapter)));
    }

    /// Forgets the adapter at `this` (called from its `Drop`).
    pub(crate) fn remove(&self, this: *const T) {
        let key = this.cast::<()>() as usize;
        self.lock().retain(|(address, _)| *address != key);
    }

    /// The adapter behind `object`, if it is one of ours.
    pub(crate) fn find<U: ?Sized>(&self, object: &Arc<U>) -> Option<Arc<T>> {
        let key = address(object);
        self.lock()
            .iter()
            .find(|(address, _)| *address == key)
            .and_then(|(_, adapter)| adapter.upgrade())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(usize, Weak<T>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Named: Send + Sync {
        fn name(&self) -> &str;
    }

    struct Adapter(&'static str);

    impl Named for Adapter {
        fn name(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn finds_an_adapter_behind_its_trait_object_and_nothing_else() {
        let registry = Registry::<Adapter>::new();
        let adapter = Arc::new(Adapter("ours"));
        registry.insert(&adapter);
        let as_trait: Arc<dyn Named> = adapter.clone();
        let found = registry.find(&as_trait).expect("the adapter");
        assert_eq!(found.name(), "ours");

        let other: Arc<dyn Named> = Arc::new(Adapter("theirs"));
        assert!(registry.find(&other).is_none());

        registry.remove(Arc::as_ptr(&adapter));
        assert!(registry.find(&as_trait).is_none());
    }
}
