//! Rate limits of credential checks, per client address and per account (governor's GCRA,
//! keyed, in this instance's memory).
//!
//! Every credential check (a password verified or set, a secret token redeemed) first asks
//! [`CredentialLimits::check`]: the client's address must have budget left, and so must the
//! account the check names, by its normalized email. The account's budget is spent whether
//! or not the email names an account, so that the answer tells nothing about which do; a check
//! that names no account (a token, a malformed email) spends the address's budget only.
//!
//! An IPv6 client is keyed by its /64, the block one subscriber usually holds; an IPv4-mapped
//! IPv6 address counts as the IPv4 one.
//!
//! These limits are per instance: N instances allow N times the rate. The store's lockout
//! (failed attempts counted in the database) is the guard that holds across instances.
//!
//! Memory: a key stays in a limiter only while its budget is not full again; every
//! `CLEANUP_EVERY` checks, keys whose budget has refilled are dropped.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::Config;
use crate::domain::Email;

/// How many checks pass between two sweeps of refilled keys.
const CLEANUP_EVERY: u64 = 1024;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A check refused: how long until it would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// The wait in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// The instance's credential-check limiters.
pub struct CredentialLimits<C: Clock = DefaultClock> {
    by_ip: Keyed<IpAddr, C>,
    by_account: Keyed<String, C>,
    clock: C,
    checks: AtomicU64,
}

/// A quota of `per_minute` with bursts of `burst` (a zero is taken as 1; config checks it).
fn quota(per_minute: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl CredentialLimits<DefaultClock> {
    /// The limiters with the configured rates.
    pub fn new(config: &Config) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> CredentialLimits<C> {
    pub fn with_clock(config: &Config, clock: C) -> Self {
        Self {
            by_ip: RateLimiter::dashmap_with_clock(
                quota(config.rate_limit_ip_per_minute, config.rate_limit_ip_burst),
                clock.clone(),
            ),
            by_account: RateLimiter::dashmap_with_clock(
                quota(
                    config.rate_limit_account_per_minute,
                    config.rate_limit_account_burst,
                ),
                clock.clone(),
            ),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Spends one credential check of `ip` (none: the shared bucket of unknown addresses) and
    /// of `account`, or says how long to wait. The address is asked first: an address out of
    /// budget spends nothing of the account's.
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&Email>) -> Result<(), Limited> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == CLEANUP_EVERY - 1 {
            self.cleanup();
        }
        let ip = ip.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), ip_key);
        self.by_ip
            .check_key(&ip)
            .map_err(|not_until| self.limited(&not_until))?;
        if let Some(account) = account {
            self.by_account
                .check_key(&account.as_str().to_owned())
                .map_err(|not_until| self.limited(&not_until))?;
        }
        Ok(())
    }

    fn limited(&self, not_until: &governor::NotUntil<C::Instant>) -> Limited {
        Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
        }
    }

    /// Drops the keys whose budget is full again (they are indistinguishable from new ones).
    pub fn cleanup(&self) {
        self.by_ip.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.retain_recent();
        self.by_account.shrink_to_fit();
    }

    /// How many keys the limiters hold (addresses, accounts).
    pub fn len(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_account.len())
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limits(clock: &FakeRelativeClock) -> CredentialLimits<FakeRelativeClock> {
        let config = Config {
            rate_limit_ip_per_minute: 6,
            rate_limit_ip_burst: 3,
            rate_limit_account_per_minute: 2,
            rate_limit_account_burst: 2,
            ..Config::default()
        };
        CredentialLimits::with_clock(&config, clock.clone())
    }

    fn email(s: &str) -> Email {
        Email::parse("email", s).unwrap()
    }

    #[test]
    fn an_address_gets_its_burst_then_waits_for_the_next_credit() {
        let clock = FakeRelativeClock::default();
        let l = limits(&clock);
        let ip = Some("192.0.2.1".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(l.check(ip, None), Ok(()));
        }
        let refused = l.check(ip, None).unwrap_err();
        // Six a minute: one credit every ten seconds.
        assert_eq!(refused.retry_after_secs(), 10);
        clock.advance(Duration::from_millis(9_500));
        assert_eq!(l.check(ip, None).unwrap_err().retry_after_secs(), 1);
        clock.advance(Duration::from_millis(500));
        assert_eq!(l.check(ip, None), Ok(()));
        // Another address is not affected.
        assert_eq!(l.check(Some("192.0.2.2".parse().unwrap()), None), Ok(()));
    }

    #[test]
    fn an_account_is_limited_across_addresses_and_by_its_normalized_email() {
        let clock = FakeRelativeClock::default();
        let l = limits(&clock);
        let ip = |i: u8| Some(IpAddr::from([198, 51, 100, i]));
        assert_eq!(l.check(ip(1), Some(&email("Ada@Example.com"))), Ok(()));
        assert_eq!(l.check(ip(2), Some(&email(" ada@example.com"))), Ok(()));
        let refused = l.check(ip(3), Some(&email("ada@example.com"))).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 30);
        assert_eq!(l.check(ip(3), Some(&email("bob@example.com"))), Ok(()));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn keys_whose_budget_refilled_are_dropped() {
        let clock = FakeRelativeClock::default();
        let l = limits(&clock);
        for i in 0..5000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = l.check(Some(ip), Some(&email(&format!("u{i}@example.com"))));
        }
        // The sweeps that ran during the spray could drop nothing: no budget had refilled.
        let (ips, accounts) = l.len();
        assert_eq!((ips, accounts), (5000, 5000));
        // Once every budget is full again, the next sweep empties both.
        clock.advance(Duration::from_secs(60));
        l.cleanup();
        assert_eq!(l.len(), (0, 0));
        // And the sweep runs by itself every CLEANUP_EVERY checks.
        for i in 0..10u32 {
            let _ = l.check(Some(IpAddr::from(i.to_be_bytes())), None);
        }
        clock.advance(Duration::from_secs(60));
        for _ in 0..CLEANUP_EVERY {
            let _ = l.check(Some("192.0.2.1".parse().unwrap()), None);
        }
        assert!(l.len().0 <= 1, "{:?}", l.len());
    }
}
