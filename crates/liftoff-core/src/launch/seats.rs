//! Admission answers remembered for the hot path (`liftoff.admitted` in every OFREP bulk
//! answer), so that a returning user's flag evaluation reads no store.
//!
//! An answer (a seat, or a place in the waitlist) is kept until something changes it, and
//! everything that does forgets it: a seat given here forgets every place (the places behind
//! it moved), a revocation here forgets the user and every place, and another replica's
//! `launch` notice (settings saved, a seat revoked, a waiting user seated) forgets
//! everything (`forget_all`). So [`ANSWER_TTL`] only bounds a missed notice. Places used to
//! be trusted for a second only; with a soft-launch cap most returning users wait, and each
//! was read from the store once a second on the OFREP hot path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a remembered answer is trusted without a store read: the bound on a missed
/// notice from another replica.
pub const ANSWER_TTL: Duration = Duration::from_secs(10);

/// At most this many answers are remembered; when full, the memory starts over (the cost is
/// one read per returning user).
pub const MAX_REMEMBERED: usize = 100_000;

/// A user's answer: seated, or waiting at a 1-based place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seat {
    Seated,
    Waiting(u64),
}

#[derive(Default)]
pub struct Seats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashMap<String, (Instant, Seat)>,
    /// Moves on every forget, so that a read that began before a revocation or a new seat
    /// cannot put the old answer back after it.
    generation: u64,
}

/// What [`Seats::generation`] handed out; an answer read after it may be remembered with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64);

impl Seats {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst entries that expire.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `user_id`'s answer when it was remembered recently enough at `now`.
    pub fn answer(&self, user_id: &str, now: Instant) -> Option<Seat> {
        let (at, seat) = *self.inner().seen.get(user_id)?;
        (now.saturating_duration_since(at) < ANSWER_TTL).then_some(seat)
    }

    /// Take before reading an answer from the store, pass to [`Seats::remember`] after.
    pub fn generation(&self) -> Generation {
        Generation(self.inner().generation)
    }

    /// Remembers `user_id`'s answer read at `now`, unless something was forgotten since
    /// `read`.
    pub fn remember(&self, user_id: &str, seat: Seat, read: Generation, now: Instant) {
        let mut inner = self.inner();
        if inner.generation != read.0 {
            return;
        }
        if inner.seen.len() >= MAX_REMEMBERED && !inner.seen.contains_key(user_id) {
            inner.seen.clear();
        }
        inner.seen.insert(user_id.to_owned(), (now, seat));
    }

    /// `user_id`'s seat or place was revoked here: the places behind it move too.
    pub fn forget(&self, user_id: &str) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.seen.remove(user_id);
        inner.seen.retain(|_, (_, seat)| *seat == Seat::Seated);
    }

    /// Seats were given here: every place in the waitlist moved.
    pub fn forget_places(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.seen.retain(|_, (_, seat)| *seat == Seat::Seated);
    }

    /// Seats may have changed elsewhere.
    pub fn forget_all(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.seen.clear();
    }

    pub fn len(&self) -> usize {
        self.inner().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_is_held_until_forgotten_or_stale() {
        let seats = Seats::default();
        let t = Instant::now();
        assert_eq!(seats.answer("u1", t), None);
        seats.remember("u1", Seat::Seated, seats.generation(), t);
        let almost = t + ANSWER_TTL - Duration::from_millis(1);
        assert_eq!(seats.answer("u1", almost), Some(Seat::Seated));
        assert_eq!(
            seats.answer("u1", t + ANSWER_TTL),
            None,
            "a missed notice lasts the TTL"
        );
        seats.forget("u1");
        assert_eq!(seats.answer("u1", t), None);
    }

    #[test]
    fn a_place_lasts_until_anyone_is_seated_or_stale() {
        let seats = Seats::default();
        let t = Instant::now();
        seats.remember("w", Seat::Waiting(3), seats.generation(), t);
        seats.remember("s", Seat::Seated, seats.generation(), t);
        assert_eq!(seats.answer("w", t), Some(Seat::Waiting(3)));
        let almost = t + ANSWER_TTL - Duration::from_millis(1);
        assert_eq!(seats.answer("w", almost), Some(Seat::Waiting(3)));
        assert_eq!(seats.answer("w", t + ANSWER_TTL), None);
        seats.forget_places();
        assert_eq!(seats.answer("w", t), None);
        assert_eq!(seats.answer("s", t), Some(Seat::Seated));
        seats.remember("w", Seat::Waiting(2), seats.generation(), t);
        seats.forget("someone-ahead");
        assert_eq!(
            seats.answer("w", t),
            None,
            "a revocation ahead moves the place"
        );
        assert_eq!(seats.answer("s", t), Some(Seat::Seated));
    }

    #[test]
    fn a_read_from_before_a_forget_is_not_remembered() {
        let seats = Seats::default();
        let t = Instant::now();
        for forget in [
            &(|s: &Seats| s.forget("u1")) as &dyn Fn(&Seats),
            &|s: &Seats| s.forget_places(),
            &|s: &Seats| s.forget_all(),
        ] {
            let read = seats.generation();
            // The revocation or the new seat commits while the read is in flight.
            forget(&seats);
            seats.remember("u1", Seat::Seated, read, t);
            assert_eq!(seats.answer("u1", t), None);
        }
        seats.remember("u1", Seat::Seated, seats.generation(), t);
        assert_eq!(seats.answer("u1", t), Some(Seat::Seated));
    }

    #[test]
    fn the_memory_is_bounded() {
        let seats = Seats::default();
        let t = Instant::now();
        for i in 0..MAX_REMEMBERED + 10 {
            seats.remember(&format!("u{i}"), Seat::Seated, seats.generation(), t);
        }
        assert!(seats.len() <= MAX_REMEMBERED);
        let last = format!("u{}", MAX_REMEMBERED + 9);
        assert_eq!(seats.answer(&last, t), Some(Seat::Seated));
    }
}
