//! Pacing: how fast requests may start, learned from MTurk's throttling.
//!
//! MTurk documents no rate limit, so the limiter starts unpaced (only `concurrency` requests in
//! flight) and learns one: on a `ThrottlingException` the allowed rate is halved (from what was
//! really being sent, not from a number that was never reached), at most once per congestion
//! event; every success then raises it additively, quickly enough that a server-side token
//! bucket (which banks unused capacity) loses almost nothing to the sawtooth. A floor keeps a
//! run moving however hard it is throttled.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The slowest the limiter ever goes, in requests per second.
pub const FLOOR_RPS: f64 = 1.0;
/// How far back the measured send rate looks.
const WINDOW: Duration = Duration::from_secs(1);
/// A request may start this early relative to its paced slot: absorbs timer granularity
/// without letting a burst through.
const TOLERANCE: Duration = Duration::from_millis(5);
/// Multiplicative decrease.
const DECREASE: f64 = 0.5;

/// An adaptive (AIMD) rate limiter with a concurrency cap.
#[derive(Debug)]
pub struct Limiter {
    concurrency: usize,
    /// `None` until the first throttle: no pacing at all.
    rate: Option<f64>,
    /// Additive increase per successful request, in requests per second; set from the rate at
    /// the last decrease so recovery takes a few seconds whatever the scale.
    step: f64,
    /// Theoretical arrival time of the next request (GCRA).
    next_slot: Instant,
    /// Start times of recent requests, to measure the real send rate.
    sent: VecDeque<Instant>,
    /// Requests started before this instant were sent at the old rate: their throttles are the
    /// same congestion event and do not halve again.
    decreased_at: Option<Instant>,
}

impl Limiter {
    pub fn new(concurrency: usize) -> Limiter {
        Limiter {
            concurrency: concurrency.max(1),
            rate: None,
            step: 0.0,
            next_slot: Instant::now(),
            sent: VecDeque::new(),
            decreased_at: None,
        }
    }

    /// The current allowed rate (`None`: unpaced).
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// When a request may start, given `in_flight` requests running: `Ok(())` now, or
    /// `Err(instant)` to wait until (`None` when only a completion can free a slot).
    pub fn check(&self, now: Instant, in_flight: usize) -> Result<(), Option<Instant>> {
        if in_flight >= self.concurrency {
            return Err(None);
        }
        if self.rate.is_some() && self.next_slot > now + TOLERANCE {
            return Err(Some(self.next_slot - TOLERANCE));
        }
        Ok(())
    }

    /// Records that a request starts now.
    pub fn on_send(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            let interval = Duration::from_secs_f64(1.0 / rate);
            self.next_slot = self.next_slot.max(now - TOLERANCE) + interval;
        }
        self.sent.push_back(now);
        while self.sent.front().is_some_and(|t| now - *t > WINDOW) {
            self.sent.pop_front();
        }
    }

    /// Requests per second started during the last window.
    fn measured(&self, now: Instant) -> f64 {
        let recent = self.sent.iter().filter(|t| now - **t <= WINDOW).count();
        recent as f64 / WINDOW.as_secs_f64()
    }

    /// A request started at `sent_at` was throttled. Returns the new rate when it changed.
    pub fn on_throttle(&mut self, now: Instant, sent_at: Instant) -> Option<f64> {
        if self.decreased_at.is_some_and(|d| sent_at < d) {
            return None;
        }
        let measured = self.measured(now).max(FLOOR_RPS);
        let base = self
            .rate
            .map_or(measured, |r| r.min(measured.max(r * DECREASE)));
        let new = (base * DECREASE).max(FLOOR_RPS);
        // Back to `base` in about half a second of successes at the new rate.
        self.step = ((base - new) / (new * 0.5)).max(0.05);
        self.rate = Some(new);
        self.decreased_at = Some(now);
        // Leave a short gap so the server's bucket refills a little before we resume.
        self.next_slot = self.next_slot.max(now) + Duration::from_secs_f64(1.0 / new);
        Some(new)
    }

    /// A request succeeded (or failed for a reason other than throttling).
    pub fn on_success(&mut self) {
        if let Some(rate) = &mut self.rate {
            *rate += self.step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_until_throttled_then_halved_once_per_event() {
        let t0 = Instant::now();
        let mut l = Limiter::new(4);
        assert!(l.check(t0, 3).is_ok());
        assert_eq!(l.check(t0, 4), Err(None));
        for i in 0..100 {
            l.on_send(t0 + Duration::from_millis(i * 5));
        }
        let now = t0 + Duration::from_millis(500);
        let r = l.on_throttle(now, now - Duration::from_millis(10)).unwrap();
        assert!((r - 50.0).abs() < 1.0, "{r}");
        // A second throttle of a request sent before the decrease: same event.
        assert_eq!(l.on_throttle(now, now - Duration::from_millis(5)), None);
        // Paced now.
        l.on_send(now);
        assert!(matches!(l.check(now, 0), Err(Some(_))));
        for _ in 0..50 {
            l.on_success();
        }
        assert!(l.rate().unwrap() > 90.0);
    }

    #[test]
    fn never_below_the_floor() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1);
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_secs(2);
            l.on_throttle(t, t);
        }
        assert!(l.rate().unwrap() >= FLOOR_RPS);
    }
}
