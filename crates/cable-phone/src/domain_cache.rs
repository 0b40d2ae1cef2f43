//! The advert's domain id for a relay host, computed once per host and process.
//!
//! A hashed host name (`cable.<hash>.com`) is found by trying up to 65,280 SHA-256s, which
//! takes milliseconds of CPU: too long to repeat on every session, and too long to run on an
//! async executor thread. The search runs on the blocking pool and its answer is kept.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Answers per host name; `None` means the host has no domain id (a private relay).
static CACHE: OnceLock<Mutex<HashMap<String, Option<u16>>>> = OnceLock::new();

#[cfg(test)]
static SEARCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn cache() -> &'static Mutex<HashMap<String, Option<u16>>> {
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached(host: &str) -> Option<Option<u16>> {
    // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
    let map = cache().lock().unwrap_or_else(|e| e.into_inner());
    map.get(host).copied()
}

/// The domain id naming `host`, if it has one.
pub(crate) async fn find_domain_id(host: &str) -> Option<u16> {
    if let Some(answer) = cached(host) {
        return answer;
    }
    let owned = host.to_owned();
    let search = move || {
        #[cfg(test)]
        SEARCHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cable_proto::domain::find_domain_id(&owned)
    };
    // The task is only lost when the runtime shuts down; then search inline rather than
    // fail the session over an optimisation.
    let answer = match tokio::task::spawn_blocking(search).await {
        Ok(answer) => answer,
        Err(_) => cable_proto::domain::find_domain_id(host),
    };
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(host.to_owned(), answer);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn each_host_is_searched_once() {
        let host = match cable_proto::domain::host_for_domain_id(51_234) {
            Ok(host) => host,
            Err(e) => panic!("{e}"),
        };
        let before = SEARCHES.load(Ordering::SeqCst);
        assert_eq!(find_domain_id(&host).await, Some(51_234));
        assert_eq!(find_domain_id(&host).await, Some(51_234));
        assert_eq!(find_domain_id("relay.example.org").await, None);
        assert_eq!(find_domain_id("relay.example.org").await, None);
        assert_eq!(SEARCHES.load(Ordering::SeqCst) - before, 2);
    }
}
