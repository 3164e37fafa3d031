//! Work a daemon wants done when its serving loop retires it (max_use, max_idle,
//! SIGTERM, master gone): [`Service::serve`](crate::Service::serve) ends with
//! `process::exit`, which runs no destructors, so a daemon that keeps something in
//! memory (smtpd's metric counts) registers a hook here to hand it over first.

use std::sync::Mutex;

type Hook = Box<dyn FnOnce() + Send>;

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Registers `hook` to run once when the serving loop retires the process.
pub fn at_exit(hook: impl FnOnce() + Send + 'static) {
    HOOKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Box::new(hook));
}

/// Runs the registered hooks, in registration order, each at most once.
pub fn run() {
    let hooks = std::mem::take(&mut *HOOKS.lock().unwrap_or_else(|p| p.into_inner()));
    for hook in hooks {
        hook();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn hooks_run_once_in_order() {
        let seen = Arc::new(AtomicUsize::new(0));
        let first = seen.clone();
        super::at_exit(move || {
            assert_eq!(first.fetch_add(1, Ordering::SeqCst), 0);
        });
        let second = seen.clone();
        super::at_exit(move || {
            assert_eq!(second.fetch_add(10, Ordering::SeqCst), 1);
        });
        super::run();
        super::run();
        assert_eq!(seen.load(Ordering::SeqCst), 11);
    }
}
