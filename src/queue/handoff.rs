//! The hand-off: a job this process can run at once is claimed in its delivery's own commit and
//! given straight to an idle worker, instead of being stored `queued` and claimed by a second commit.
//!
//! Why: every commit on the path from a slash command to its answer is a disk flush (SQLite
//! `synchronous=FULL`) and a wait for the store's one writer. Issue 27's trace of one command found
//! three before the answer (the delivery, the claim, the ledger's intent); the claim is the one no
//! guarantee needs when this process has a worker waiting.
//!
//! How: `idle` counts the workers waiting for work. [`Handoff::reserve`] takes one of them (a
//! compare-and-swap, nothing waits) for a delivery about to be stored; the delivery is then stored
//! `running` under a lease of ours ([`crate::store::NewJob::lease`]), and after the commit the
//! [`Reservation`] hands the job over a channel. A duplicate delivery, a failed commit or a dropped
//! reservation hands over nothing (a `None`), so the reserved worker goes back to the store. Every
//! worker leaving its idle wait either takes back its count ([`Handoff::leave_idle`]) or, when a
//! reservation took it, receives that reservation's message: the count and the messages in flight
//! always add up to the workers waiting, so no worker waits for a message that never comes.
//!
//! Crash safety is the lease's: a job stored `running` whose process dies before or while running it
//! is claimed again when its lease runs out, as if its worker had died mid-attempt (the attempt is
//! counted). A worker stopping for shutdown releases a job handed to it and not yet run (queued
//! again, the attempt not counted).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, mpsc};

use crate::store::StoredJob;

/// A job leased to a worker to run next, without a claim of its own: handed over here (claimed in
/// its delivery's commit), or claimed in the commit that completed the worker's last job
/// ([`crate::store::SqlStore::complete_and_claim`]). The job as stored and the lease's owner; both
/// run alike (the job's `ledgering` says how its attempt keeps the ledger).
pub(super) struct Handed {
    pub(super) job: StoredJob,
    pub(super) owner: String,
}

pub(super) struct Handoff {
    idle: AtomicUsize,
    sender: mpsc::Sender<Option<Handed>>,
    receiver: Mutex<mpsc::Receiver<Option<Handed>>>,
}

impl Handoff {
    /// For `workers` workers: at most that many reservations are ever outstanding, so a send never
    /// waits.
    pub(super) fn new(workers: usize) -> Self {
        let (sender, receiver) = mpsc::channel(workers.max(1));
        Self {
            idle: AtomicUsize::new(0),
            sender,
            receiver: Mutex::new(receiver),
        }
    }

    /// Takes an idle worker for one delivery, if one is waiting.
    pub(super) fn reserve(&self) -> Option<Reservation> {
        self.take_idle().then(|| Reservation {
            sender: Some(self.sender.clone()),
        })
    }

    /// A worker starts waiting for work.
    pub(super) fn enter_idle(&self) {
        self.idle.fetch_add(1, Ordering::AcqRel);
    }

    /// A worker stops waiting on its own (woken, polled, stopping). `false`: a reservation took
    /// its count, so it must [`Self::receive`] that reservation's message.
    pub(super) fn leave_idle(&self) -> bool {
        self.take_idle()
    }

    /// Takes one count off `idle` unless it is zero; whoever takes it owns that idle worker.
    fn take_idle(&self) -> bool {
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The next reservation's message: a job to run, or `None` (nothing came of it). Cancel-safe.
    pub(super) async fn receive(&self) -> Option<Handed> {
        self.receiver.lock().await.recv().await.flatten()
    }
}

/// One idle worker, taken for one delivery. Dropped without [`Self::hand`], it gives the worker back.
pub(super) struct Reservation {
    sender: Option<mpsc::Sender<Option<Handed>>>,
}

impl Reservation {
    /// Gives the job (stored `running` under `owner`'s lease, committed) to the reserved worker.
    pub(super) fn hand(mut self, job: StoredJob, owner: String) {
        self.send(Some(Handed { job, owner }));
    }

    fn send(&mut self, message: Option<Handed>) {
        if let Some(sender) = self.sender.take() {
            // Never full: at most one message per worker is outstanding. Never closed: the
            // receiver lives as long as the queue that holds this sender.
            let _ = sender.try_send(message);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.send(None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reservation_takes_an_idle_worker_and_a_dropped_one_gives_it_back() {
        let handoff = Handoff::new(2);
        assert!(handoff.reserve().is_none(), "nobody is idle");
        handoff.enter_idle();
        let reservation = handoff.reserve().unwrap();
        assert!(handoff.reserve().is_none(), "the one idle worker is taken");
        // The worker wakes on its own meanwhile: its count is gone, so it waits for the message.
        assert!(!handoff.leave_idle());
        drop(reservation);
        assert!(handoff.receive().await.is_none(), "nothing came of it");
        // Idle again and leaving on its own: its count is there to take back.
        handoff.enter_idle();
        assert!(handoff.leave_idle());
        assert!(handoff.reserve().is_none());
    }
}
