//! argon2id with a bound: every password hash and verification runs on a blocking thread while
//! it holds one of a few permits, so a flood of sign-ins costs at most `concurrency` × argon2's
//! memory (19 MiB each with the default parameters) instead of one hash per request.
//!
//! A caller says how long it may wait for a permit. Sign-in waits only [`SIGN_IN_WAIT`] and is
//! answered "busy" after that (the page says 429) rather than queueing; administrative work
//! (creating users, the first-start bootstrap) waits longer. The permit moves into the blocking
//! task, so a request that is cancelled half-way still holds it until the hash is done.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::UserError;

/// Hashes that may run at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// How long a sign-in waits for a permit before it is refused as busy.
pub const SIGN_IN_WAIT: Duration = Duration::from_millis(100);
/// How long creating a user or the first-start bootstrap waits for a permit.
pub const ADMIN_WAIT: Duration = Duration::from_secs(10);

/// Passwords are 8 to 1024 characters.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=1024;

/// A hash with the same parameters as every stored one, verified against when the user does not
/// exist: an unknown name costs exactly one verification, like a known one, so timing does not
/// reveal which names exist. Computed once per process ([`PasswordHashing::warm_up`] does it at
/// start, under a permit).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_now(&crate::secret::random_token(24)).unwrap_or_else(|_| {
        // Unreachable with a 32-character input; a string that fails to parse still costs
        // nothing secret.
        String::new()
    })
});

/// No permit was free within the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// What the hashing gate has done so far (for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Hashes or verifications running right now.
    pub running: usize,
    /// The most that ever ran at once.
    pub peak: usize,
    /// Password verifications run (dummy ones for unknown users included).
    pub verifications: u64,
    /// New password hashes computed.
    pub hashes: u64,
    /// Callers turned away because no permit was free in time.
    pub busy: u64,
}

#[derive(Default)]
struct Counters {
    running: AtomicUsize,
    peak: AtomicUsize,
    verifications: AtomicU64,
    hashes: AtomicU64,
    busy: AtomicU64,
}

/// The gate every argon2 computation passes. Cheap to clone; clones share the permits.
#[derive(Clone)]
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    concurrency: usize,
    counters: Arc<Counters>,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self::new(DEFAULT_CONCURRENCY)
    }
}

impl PasswordHashing {
    /// At most `concurrency` (at least 1) hashes at once.
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            counters: Arc::default(),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    pub fn stats(&self) -> HashStats {
        let c = &self.counters;
        HashStats {
            running: c.running.load(Ordering::Relaxed),
            peak: c.peak.load(Ordering::Relaxed),
            verifications: c.verifications.load(Ordering::Relaxed),
            hashes: c.hashes.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
        }
    }

    /// Takes a permit, waiting at most `wait` (permits are handed out in arrival order).
    pub async fn permit(&self, wait: Duration) -> Result<HashPermit, Busy> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if wait.is_zero() => None,
            Err(_) => tokio::time::timeout(wait, self.permits.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        match permit {
            Some(permit) => Ok(HashPermit {
                permit,
                counters: self.counters.clone(),
            }),
            None => {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                Err(Busy)
            }
        }
    }

    /// Hashes a new password (after checking its length), waiting at most `wait` for a permit.
    pub async fn hash(&self, password: &str, wait: Duration) -> Result<String, UserError> {
        check_length(password)?;
        let permit = self.permit(wait).await.map_err(|Busy| UserError::Busy)?;
        permit.hash(password).await
    }

    /// Computes the dummy hash now, under a permit, so the first sign-in for an unknown user
    /// costs no more than any other.
    pub async fn warm_up(&self) {
        if let Ok(permit) = self.permit(ADMIN_WAIT).await {
            permit
                .run(|| {
                    LazyLock::force(&DUMMY_HASH);
                })
                .await;
        }
    }
}

/// A held permit: spend it on one hash or one verification.
pub struct HashPermit {
    permit: OwnedSemaphorePermit,
    counters: Arc<Counters>,
}

impl HashPermit {
    /// Runs `f` on a blocking thread that holds the permit until `f` returns; `None` if it
    /// panicked.
    async fn run<T: Send + 'static>(self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let Self { permit, counters } = self;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Running::start(&counters);
            f()
        })
        .await
        .ok()
    }

    /// Hashes a new password.
    pub async fn hash(self, password: &str) -> Result<String, UserError> {
        check_length(password)?;
        let counters = self.counters.clone();
        let password = password.to_owned();
        let out = self
            .run(move || {
                counters.hashes.fetch_add(1, Ordering::Relaxed);
                hash_now(&password)
            })
            .await;
        out.unwrap_or_else(|| Err(UserError::Hash("hashing task failed".into())))
    }

    /// Verifies `password` against `phc`, or against the dummy hash when there is no user, so
    /// both cost one verification.
    pub async fn verify(self, password: &str, phc: Option<String>) -> bool {
        let counters = self.counters.clone();
        let password = password.to_owned();
        self.run(move || {
            counters.verifications.fetch_add(1, Ordering::Relaxed);
            match phc {
                Some(phc) => verify_now(&password, &phc),
                None => {
                    let _ = verify_now(&password, &DUMMY_HASH);
                    false
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

/// Counts a computation as running for as long as it lives (panics included).
struct Running<'a>(&'a Counters);

impl<'a> Running<'a> {
    fn start(counters: &'a Counters) -> Self {
        let now = counters.running.fetch_add(1, Ordering::AcqRel) + 1;
        counters.peak.fetch_max(now, Ordering::AcqRel);
        Self(counters)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

fn check_length(password: &str) -> Result<(), UserError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(UserError::WeakPassword)
    }
}

/// argon2id with the default parameters, on the calling thread: only through a permit.
fn hash_now(password: &str) -> Result<String, UserError> {
    check_length(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// On the calling thread: only through a permit.
fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_now("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_now("correct horse", &phc));
        assert!(!verify_now("wrong horse", &phc));
        assert!(!verify_now("x", "not a phc string"));
    }

    #[test]
    fn the_dummy_hash_has_the_stored_parameters() {
        let real = PasswordHash::new(&hash_now("correct horse").unwrap())
            .unwrap()
            .params
            .to_string();
        let dummy = DUMMY_HASH.clone();
        assert!(dummy.starts_with("$argon2id$"));
        assert_eq!(PasswordHash::new(&dummy).unwrap().params.to_string(), real);
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(matches!(hash_now("short"), Err(UserError::WeakPassword)));
        assert!(matches!(
            hash_now(&"x".repeat(1025)),
            Err(UserError::WeakPassword)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_permits_run_at_once() {
        let gate = PasswordHashing::new(2);
        let phc = hash_now("correct horse").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let gate = gate.clone();
            let phc = phc.clone();
            tasks.push(tokio::spawn(async move {
                match gate.permit(Duration::ZERO).await {
                    Ok(p) => Some(p.verify("wrong horse", Some(phc)).await),
                    Err(Busy) => None,
                }
            }));
        }
        let mut ran = 0;
        for t in tasks {
            if let Some(ok) = t.await.unwrap() {
                assert!(!ok);
                ran += 1;
            }
        }
        let stats = gate.stats();
        assert!(stats.peak <= 2, "{stats:?}");
        assert_eq!(stats.running, 0);
        assert_eq!(stats.verifications, ran);
        assert_eq!(stats.busy, 16 - ran);
        assert!(
            stats.busy > 0,
            "16 at once cannot all find a permit: {stats:?}"
        );
    }

    #[tokio::test]
    async fn unknown_users_cost_one_verification() {
        let gate = PasswordHashing::new(1);
        gate.warm_up().await;
        let before = gate.stats().verifications;
        let p = gate.permit(ADMIN_WAIT).await.unwrap();
        assert!(!p.verify("whatever password", None).await);
        assert_eq!(gate.stats().verifications, before + 1);
    }

    #[tokio::test]
    async fn a_held_permit_makes_others_busy_until_released() {
        let gate = PasswordHashing::new(1);
        let held = gate.permit(Duration::ZERO).await.unwrap();
        assert!(matches!(
            gate.hash("correct horse", Duration::from_millis(20)).await,
            Err(UserError::Busy)
        ));
        drop(held);
        assert!(gate.hash("correct horse", Duration::ZERO).await.is_ok());
        assert_eq!(gate.stats().hashes, 1);
    }
}
