//! Single flight: callers that want the same answer at the same time
//! share one request. The first runs it; the others wait for its answer,
//! whatever it is (an outage included), so a burst of requests with the
//! same uncached token costs the issuer one call. If the one running it
//! gives up (its future is dropped), a waiting caller runs it instead.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;

/// Each flight by key, with how many callers share it.
type InFlight<K, V> = HashMap<K, (usize, Arc<OnceCell<V>>)>;

/// The requests in flight, by key, with how many callers share each.
pub(crate) struct Flights<K, V> {
    in_flight: Mutex<InFlight<K, V>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Copy, V: Clone> Flights<K, V> {
    fn lock(&self) -> MutexGuard<'_, InFlight<K, V>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer of the request in flight for `key`, or of `request`
    /// when none is (`request` is dropped unused otherwise).
    pub(crate) async fn run(&self, key: K, request: impl Future<Output = V>) -> V {
        let seat = Seat::take(self, key);
        seat.flight.get_or_init(|| request).await.clone()
    }

    /// Requests in flight (or whose answer is still being handed out).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One caller's share of a flight. The last to leave removes the flight,
/// so the next caller starts a new request.
struct Seat<'a, K: Eq + Hash + Copy, V: Clone> {
    flights: &'a Flights<K, V>,
    key: K,
    flight: Arc<OnceCell<V>>,
}

impl<'a, K: Eq + Hash + Copy, V: Clone> Seat<'a, K, V> {
    fn take(flights: &'a Flights<K, V>, key: K) -> Self {
        let mut in_flight = flights.lock();
        let (seats, flight) = in_flight.entry(key).or_default();
        *seats += 1;
        Seat {
            flights,
            key,
            flight: Arc::clone(flight),
        }
    }
}

impl<K: Eq + Hash + Copy, V: Clone> Drop for Seat<'_, K, V> {
    fn drop(&mut self) {
        let mut in_flight = self.flights.lock();
        if let Some((seats, _)) = in_flight.get_mut(&self.key) {
            *seats = seats.saturating_sub(1);
            if *seats == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_request() {
        let flights = Flights::<u8, usize>::default();
        let calls = AtomicUsize::new(0);
        let request = || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::task::yield_now().await;
            n
        };
        let (a, b, c) = tokio::join!(
            flights.run(1, request()),
            flights.run(1, request()),
            flights.run(1, request()),
        );
        assert_eq!((a, b, c), (1, 1, 1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another key is its own flight; a finished flight is gone, so
        // the next caller asks anew.
        let (d, e) = tokio::join!(flights.run(2, request()), flights.run(1, request()));
        assert_eq!((d, e), (2, 3));
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_first_caller_gives_up() {
        let flights = Flights::<u8, &str>::default();
        let never = std::future::pending::<&str>();
        // The first caller's request never ends and it is dropped after
        // 50 ms; the second, waiting meanwhile, runs its own.
        let first = tokio::time::timeout(Duration::from_millis(50), flights.run(1, never));
        let second = async {
            tokio::task::yield_now().await;
            flights.run(1, async { "second" }).await
        };
        let (first, second) = tokio::join!(first, second);
        assert!(first.is_err());
        assert_eq!(second, "second");
        assert_eq!(flights.len(), 0);
        // A lone caller dropped mid-flight leaves nothing behind.
        let lone = tokio::time::timeout(
            Duration::from_millis(10),
            flights.run(2, std::future::pending()),
        );
        assert!(lone.await.is_err());
        assert_eq!(flights.len(), 0);
    }
}
