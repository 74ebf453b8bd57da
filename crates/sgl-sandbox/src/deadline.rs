//! The wall-clock limit: a timer thread per run that bumps the engine's epoch once the run's
//! deadline has passed, and stops (and is joined) when the run ends.
//!
//! The engine, and so its epoch, is shared by every run of a [`crate::Sandbox`], including
//! runs on other threads. A bump therefore reaches every running guest, and each store decides
//! for itself: its epoch callback ends the guest only if *its own* deadline has passed, and
//! otherwise waits for the next bump. One run's timer can never end another run early.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Trap, UpdateDeadline};

/// How often the timer bumps the epoch again after the deadline, until the run ends. One bump
/// is enough in principle; the repeats cost nothing and cover a guest that was inside a host
/// call at the first one.
const RETICK: Duration = Duration::from_millis(50);

/// The epoch callback of a store whose run must end at `deadline` (`None`: no deadline).
pub(crate) fn epoch_callback<T>(
    deadline: Option<Instant>,
) -> impl FnMut(wasmtime::StoreContextMut<'_, T>) -> wasmtime::Result<UpdateDeadline> + Send + Sync + 'static {
    move |_store| match deadline {
        Some(deadline) if Instant::now() >= deadline => Err(wasmtime::Error::new(Trap::Interrupt)),
        _ => Ok(UpdateDeadline::Continue(1)),
    }
}

/// A running timer; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct DeadlineTimer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DeadlineTimer {
    /// Starts a thread that bumps `engine`'s epoch at `deadline` and every [`RETICK`] after.
    pub(crate) fn start(engine: &Engine, deadline: Instant) -> std::io::Result<Self> {
        let engine = engine.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new().name("sgl-sandbox-deadline".to_owned()).spawn(move || {
            let mut wait = deadline.saturating_duration_since(Instant::now());
            // Any message, or the sender being dropped, ends the thread.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                engine.increment_epoch();
                wait = RETICK;
            }
        })?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for DeadlineTimer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only waits and bumps a counter; it cannot panic.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::AsContextMut;

    use super::*;

    #[test]
    fn a_timer_dropped_before_its_deadline_stops_at_once() {
        let engine = Engine::default();
        let timer = DeadlineTimer::start(&engine, Instant::now() + Duration::from_secs(3600)).expect("timer starts");
        let dropped = Instant::now();
        drop(timer);
        assert!(dropped.elapsed() < Duration::from_secs(1), "drop waited {:?}", dropped.elapsed());
    }

    #[test]
    fn the_callback_continues_before_the_deadline_and_interrupts_after() {
        let mut store = wasmtime::Store::new(&Engine::default(), ());
        let mut before = epoch_callback::<()>(Some(Instant::now() + Duration::from_secs(3600)));
        assert!(matches!(before(store.as_context_mut()), Ok(UpdateDeadline::Continue(1))));
        let mut none = epoch_callback::<()>(None);
        assert!(matches!(none(store.as_context_mut()), Ok(UpdateDeadline::Continue(1))));
        let mut after = epoch_callback::<()>(Some(Instant::now()));
        let Err(error) = after(store.as_context_mut()) else { panic!("the deadline has passed") };
        assert_eq!(error.downcast_ref::<Trap>(), Some(&Trap::Interrupt));
    }
}
