//! The gate in front of password hashing. One Argon2 hash takes about
//! 19 MiB and tens of milliseconds of a core, so a login flood must not run
//! them all at once: at most `permits` hashes run at a time, at most
//! `max_waiting` callers wait for a turn, and every caller beyond that is
//! refused at once with [`AuthError::Overloaded`] (429 at the gateway)
//! instead of queueing without bound. Hashes run on `permits` threads of
//! the gate's own, so memory spent on hashing is at most `permits` hashes
//! whatever the allocator keeps per thread (with tokio's blocking pool a
//! flood spread hashes over many threads, and glibc kept ~20 MiB per
//! thread's arena: 550 MB after 150 logins).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use tokio::sync::{Semaphore, SemaphorePermit, oneshot};

/// A hash to run on one of the gate's threads.
type Job = Box<dyn FnOnce() + Send>;

use crate::error::{AuthError, Result};

/// Hashes run at once by default: one per core, at least two.
pub fn default_permits() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// Callers that may wait for a hash by default.
pub const DEFAULT_MAX_WAITING: usize = 64;

/// Bounds concurrent password hashing.
pub struct HashGate {
    permits: Semaphore,
    /// The hashing threads' queue; never holds more than `permits` jobs,
    /// since a job is sent only with a permit held.
    jobs: Mutex<mpsc::Sender<Job>>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// A turn to hash: while it is held, one of the permits is taken.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
    jobs: &'a Mutex<mpsc::Sender<Job>>,
}

impl Turn<'_> {
    /// Runs `hash` on one of the gate's threads.
    pub async fn hash<T: Send + 'static>(
        &self,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(hash());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| AuthError::Internal("the hashing threads are gone".into()))?;
        answered
            .await
            .map_err(|_| AuthError::Internal("a hashing thread failed".into()))
    }
}

/// Takes a waiting place back when the caller stops waiting, whether it got
/// a turn or gave up.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for HashGate {
    fn default() -> Self {
        Self::new(default_permits(), DEFAULT_MAX_WAITING)
    }
}

impl HashGate {
    /// At most `permits` hashes at once and `max_waiting` callers waiting
    /// for one (each at least one; a caller counts as waiting until its
    /// hash starts).
    pub fn new(permits: usize, max_waiting: usize) -> Self {
        let permits = permits.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(Mutex::new(queue));
        for n in 0..permits {
            let queue = queue.clone();
            // A thread that cannot start leaves fewer hashing threads; the
            // others still serve every turn.
            let _ = std::thread::Builder::new()
                .name(format!("vectron-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            // The gate is gone.
                            Err(_) => return,
                        }
                    }
                });
        }
        Self {
            permits: Semaphore::new(permits),
            jobs: Mutex::new(jobs),
            waiting: AtomicUsize::new(0),
            max_waiting: max_waiting.max(1),
        }
    }

    /// Waits for a turn to hash, or refuses at once when too many callers
    /// are already waiting. A caller takes its turn before any work that
    /// only leads up to the hash (a user lookup), so a flood is refused
    /// before it costs anything.
    pub async fn turn(&self) -> Result<Turn<'_>> {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let place = Waiting(&self.waiting);
        if waiting >= self.max_waiting {
            return Err(AuthError::Overloaded(
                "too many password checks in progress; retry shortly".into(),
            ));
        }
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Internal("the hashing gate is closed".into()))?;
        drop(place);
        Ok(Turn {
            _permit: permit,
            jobs: &self.jobs,
        })
    }

    /// Runs `hash` when a turn comes, or refuses when too many callers are
    /// already waiting.
    pub async fn run<T: Send + 'static>(
        &self,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.turn().await?.hash(hash).await
    }

    /// Callers waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_permits_run_and_the_queue_overflow_is_refused() {
        let gate = Arc::new(HashGate::new(2, 3));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        // Hashes block until the test lets them go, so the queue is full
        // while the rest arrive.
        let released = Arc::new(AtomicBool::new(false));
        let mut calls = Vec::new();
        for _ in 0..20 {
            let (gate, running, most, finished, released) = (
                gate.clone(),
                running.clone(),
                most.clone(),
                finished.clone(),
                released.clone(),
            );
            calls.push(tokio::spawn(async move {
                let result = gate
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        while !released.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
                finished.fetch_add(1, Ordering::SeqCst);
                result
            }));
        }
        // Until released, every caller is running (blocked), waiting, or
        // answered: at most 2 run and 3 wait, so at least 15 are refused.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while finished.load(Ordering::SeqCst) + gate.waiting() + running.load(Ordering::SeqCst) < 20
        {
            assert!(
                std::time::Instant::now() < deadline,
                "callers went unaccounted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(running.load(Ordering::SeqCst) <= 2);
        assert!(gate.waiting() <= 3);
        released.store(true, Ordering::SeqCst);
        let mut done = 0;
        let mut refused = 0;
        for call in calls {
            match call.await.expect("task") {
                Ok(()) => done += 1,
                Err(AuthError::Overloaded(_)) => refused += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(done + refused, 20);
        assert!(
            refused >= 15,
            "refused {refused}: the queue was not bounded"
        );
        assert!(done >= 2, "done {done}");
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "at most 2 hashes ran at once"
        );
        assert_eq!(gate.waiting(), 0, "every waiting place is given back");
    }

    #[tokio::test]
    async fn a_free_gate_runs_the_hash() {
        let gate = HashGate::new(1, 0);
        assert_eq!(gate.run(|| 7).await.expect("runs"), 7);
    }
}
