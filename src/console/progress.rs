//! Progress lines for commands that work through many items (`forget` of many emails, `jobs retry
//! --all-dead`, `zendesk backfill`): `  {what}: {done}/{total}` on stderr, at most about twenty lines
//! per run (one every `total/20` items, and always the last), so an operator sees that a long run
//! moves and how far it is, and stdout keeps only the command's result for scripts.

use std::io::Write;

/// Lines printed over a whole run, at most (plus the last).
const LINES: usize = 20;

/// Reports `done/total` as work advances.
pub struct Progress {
    what: &'static str,
    total: usize,
    every: usize,
    done: usize,
    shown: Option<usize>,
    out: Box<dyn Write + Send>,
}

impl Progress {
    /// Progress of `total` items of `what` (e.g. `"erasures finished"`), on stderr.
    pub fn new(what: &'static str, total: usize) -> Self {
        Self::to(what, total, Box::new(std::io::stderr()))
    }

    /// The same, written to `out` (for tests).
    pub fn to(what: &'static str, total: usize, out: Box<dyn Write + Send>) -> Self {
        Self {
            what,
            total,
            every: total.div_ceil(LINES).max(1),
            done: 0,
            shown: None,
            out,
        }
    }

    /// `n` more items are done.
    pub fn advance(&mut self, n: usize) {
        self.set(self.done.saturating_add(n));
    }

    /// `done` items are done in all (never more than `total` is shown).
    pub fn set(&mut self, done: usize) {
        self.done = done.min(self.total);
        let crossed = self.done / self.every > self.shown.unwrap_or(0) / self.every;
        if self.shown != Some(self.done) && (crossed || self.done == self.total) {
            let _ = writeln!(self.out, "  {}: {}/{}", self.what, self.done, self.total);
            self.shown = Some(self.done);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(shared: &Shared) -> Vec<String> {
        String::from_utf8(shared.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_long_run_prints_about_twenty_lines_ending_with_the_total() {
        let out = Shared::default();
        let mut progress = Progress::to("jobs queued again", 1000, Box::new(out.clone()));
        for _ in 0..1000 {
            progress.advance(1);
        }
        let lines = lines(&out);
        assert_eq!(lines.len(), 20, "{lines:?}");
        assert_eq!(lines[0], "  jobs queued again: 50/1000");
        assert_eq!(lines[19], "  jobs queued again: 1000/1000");
    }

    #[test]
    fn a_short_run_prints_every_step_once() {
        let out = Shared::default();
        let mut progress = Progress::to("erasures finished", 3, Box::new(out.clone()));
        for done in [0, 1, 1, 3, 3] {
            progress.set(done);
        }
        assert_eq!(
            lines(&out),
            ["  erasures finished: 1/3", "  erasures finished: 3/3"]
        );
    }
}
