//! Per-source token buckets for `new` and `connect`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use tokio::time::Instant;

/// IPv6 clients are grouped by /64: one host usually owns a whole /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token-bucket rate limiter keyed by source address. Memory is bounded: buckets that have
/// refilled completely carry no information and are pruned.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    max_buckets: usize,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64, burst: u32, max_buckets: usize) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
            max_buckets,
        }
    }

    /// Takes one token for `ip` now; `false` means the request must be refused.
    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    /// [`RateLimiter::allow`] at a given time.
    pub(crate) fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let key = source_key(ip);
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= self.max_buckets && !buckets.contains_key(&key) {
            Self::prune(&mut buckets, now, self.rate, self.burst);
            if buckets.len() >= self.max_buckets {
                // Every tracked source is actively limited: refuse newcomers rather than grow.
                return false;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops buckets that are full again.
    pub(crate) fn prune_now(&self) {
        self.prune_at(Instant::now());
    }

    fn prune_at(&self, now: Instant) {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        Self::prune(&mut buckets, now, self.rate, self.burst);
    }

    fn prune(buckets: &mut HashMap<IpAddr, Bucket>, now: Instant, rate: f64, burst: f64) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(10.0, 3, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(rl.allow_at(ip, t0));
        assert!(rl.allow_at(ip, t0));
        assert!(rl.allow_at(ip, t0));
        assert!(!rl.allow_at(ip, t0));
        // Other sources are independent.
        assert!(rl.allow_at("192.0.2.2".parse().unwrap(), t0));
        // 100 ms at 10/s refills one token.
        assert!(rl.allow_at(ip, t0 + Duration::from_millis(100)));
        assert!(!rl.allow_at(ip, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn ipv6_grouped_by_prefix() {
        let rl = RateLimiter::new(1.0, 1, 100);
        let t0 = Instant::now();
        assert!(rl.allow_at("2001:db8:1:2::1".parse().unwrap(), t0));
        assert!(!rl.allow_at("2001:db8:1:2::ffff".parse().unwrap(), t0));
        assert!(rl.allow_at("2001:db8:1:3::1".parse().unwrap(), t0));
    }

    #[test]
    fn memory_is_bounded() {
        let rl = RateLimiter::new(1.0, 1, 4);
        let t0 = Instant::now();
        for i in 0..4u8 {
            assert!(rl.allow_at(IpAddr::from([10, 0, 0, i]), t0));
        }
        // All four buckets are empty, so a fifth source is refused instead of tracked.
        assert!(!rl.allow_at(IpAddr::from([10, 0, 0, 9]), t0));
        // Once they refill they are pruned and newcomers are admitted again.
        assert!(rl.allow_at(IpAddr::from([10, 0, 0, 9]), t0 + Duration::from_secs(2)));
        rl.prune_at(t0 + Duration::from_secs(10));
        assert!(rl.buckets.lock().unwrap().is_empty());
    }

    /// The relay's deadlines run on tokio's clock; the limiter must refill on the same clock,
    /// or a test that pauses time sees deadlines move and the limiter stand still.
    #[tokio::test(start_paused = true)]
    async fn refills_on_the_runtime_clock() {
        let rl = RateLimiter::new(1.0, 1, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(rl.allow(ip));
        assert!(!rl.allow(ip));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(rl.allow(ip));
        tokio::time::advance(Duration::from_secs(5)).await;
        rl.prune_now();
        assert!(rl.buckets.lock().unwrap().is_empty());
    }

    #[test]
    fn disabled_allows_everything() {
        let rl = RateLimiter::new(0.0, 0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(rl.allow_at("192.0.2.1".parse().unwrap(), t0));
        }
    }
}
