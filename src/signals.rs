//! SIGTERM, SIGINT and SIGHUP, caught once for the whole process the first
//! time something asks. Until then they keep their default action. Caught,
//! a signal still ends the process at once (the handler runs the default
//! action), except:
//!
//! - while a helper runs (a `credential_process`, in a process group of its
//!   own): its wait sees the signal, ends the helper with its whole group
//!   (which the default action would leave running), and then ends the
//!   process as the signal would have;
//! - once a command stops gracefully (the engine, which holds records): the
//!   signal only asks it to stop. A watchdog then makes sure the process ends
//!   `OVERRUN` after the `CANCEL_GRACE` the engine allows itself, whatever
//!   still holds it (an answer that does not come, a stdout nobody reads):
//!   nothing unconfirmed has been echoed, so a rerun from the last echoed
//!   state loses nothing.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a cancelled run may still spend sending what it holds.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// How long past the grace period the watchdog lets a stopping run go on.
pub const OVERRUN: Duration = Duration::from_secs(2);

/// How often the watchdog and helper waits look for a signal.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How long a helper's group may take to end on SIGTERM before SIGKILL.
const HELPER_GRACE: Duration = Duration::from_secs(1);

/// How long the watchdog waits for its last words (stdout may be blocked).
const LAST_WORDS: Duration = Duration::from_secs(1);

/// What happens to a signal, and what has been caught.
struct Signals {
    /// The signal caught (its number), 0 while none.
    caught: Arc<AtomicUsize>,
    /// When the signal was first noticed.
    noticed: Arc<OnceLock<Instant>>,
    /// Read by the handler: whether the signal ends the process at once.
    at_once: Arc<AtomicBool>,
    /// What decides `at_once`.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether a graceful stop was asked for.
    graceful: bool,
    /// The helpers running.
    helpers: Vec<Helper>,
    /// What the watchdog says on its way out, besides stderr (a TRACE).
    last_words: Option<Arc<LastWords>>,
}

/// What the watchdog says on its way out, given its message.
pub type LastWords = dyn Fn(&str) + Send + Sync;

static SIGNALS: OnceLock<Signals> = OnceLock::new();

/// The process's signal state, the handlers installed on first use.
fn signals() -> &'static Signals {
    SIGNALS.get_or_init(|| {
        let s = Signals {
            caught: Arc::new(AtomicUsize::new(0)),
            noticed: Arc::new(OnceLock::new()),
            at_once: Arc::new(AtomicBool::new(true)),
            state: Mutex::new(State::default()),
        };
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            // Without the handlers the default action stands, which loses
            // nothing either (no state is echoed early): not fatal.
            let _ = signal_hook::flag::register_usize(sig, Arc::clone(&s.caught), sig as usize);
            let _ = signal_hook::flag::register_conditional_default(sig, Arc::clone(&s.at_once));
        }
        s
    })
}

impl Signals {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The signal caught, by name, once noticed.
    fn caught(&self) -> Option<&'static str> {
        let name = name(self.caught.load(Ordering::SeqCst))?;
        self.noticed.get_or_init(Instant::now);
        Some(name)
    }

    /// Sets the handler's choice from the state: at once, unless stopping
    /// gracefully or a helper runs.
    fn decide(&self, state: &State) {
        let at_once = !state.graceful && state.helpers.is_empty();
        self.at_once.store(at_once, Ordering::SeqCst);
    }
}

/// A signal's name, from its number (0: none).
pub fn name(signal: usize) -> Option<&'static str> {
    match signal {
        0 => None,
        s if s == SIGINT as usize => Some("SIGINT"),
        s if s == SIGHUP as usize => Some("SIGHUP"),
        _ => Some("SIGTERM"),
    }
}

/// The signal caught, if one was (None while the handlers are not installed).
pub fn caught() -> Option<&'static str> {
    SIGNALS.get()?.caught()
}

/// Signals ask for a graceful stop from now on, for the rest of the run:
/// gives the flag the handler sets (the signal's number) and when it was
/// first noticed. A watchdog ends the process `OVERRUN` after the grace
/// period should the run not have ended by then.
pub fn stop_gracefully() -> (Arc<AtomicUsize>, Arc<OnceLock<Instant>>) {
    let s = signals();
    let mut state = s.state();
    if !state.graceful {
        std::thread::spawn(watchdog);
    }
    state.graceful = true;
    s.decide(&state);
    (Arc::clone(&s.caught), Arc::clone(&s.noticed))
}

/// What the watchdog says, besides its line on stderr, should it end the
/// process (for an Airbyte command, a TRACE on stdout).
pub fn last_words(say: Arc<LastWords>) {
    signals().state().last_words = Some(say);
}

/// Ends the process if a graceful stop has outlasted its grace period.
fn watchdog() {
    let s = signals();
    let since = loop {
        if s.caught().is_some() {
            if let Some(at) = s.noticed.get() {
                break *at;
            }
        }
        std::thread::sleep(LOOK_EVERY);
    };
    let end = since + CANCEL_GRACE + OVERRUN;
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let signal = s.caught().unwrap_or("a signal");
    let message = format!(
        "sync cancelled by {signal}, which came {} s ago: sending what was held took longer than the {} s \
         allowed (an answer from Kinesis, or room on standard output, was still awaited), so the run ends \
         now; no state was echoed for records not confirmed as stored, so a rerun from the last echoed \
         state loses nothing",
        (CANCEL_GRACE + OVERRUN).as_secs(),
        CANCEL_GRACE.as_secs()
    );
    let (helpers, last_words) = {
        let state = s.state();
        (state.helpers.clone(), state.last_words.clone())
    };
    end_helpers(&helpers);
    // Told on a thread of its own: stderr or stdout may be what blocks.
    let (told, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        eprintln!("destination-kinesis: {message}");
        if let Some(say) = last_words {
            say(&message);
        }
        let _ = told.send(());
    });
    let _ = done.recv_timeout(LAST_WORDS);
    std::process::exit(crate::failure::EXIT_FAILURE);
}

/// A helper process this program started and waits for: ended (with its
/// process group, when it leads one) should a signal end the program first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Helper {
    /// Its process id.
    pid: u32,
    /// Whether it leads a process group of its own, which ends with it.
    own_group: bool,
}

/// A running helper, noted until dropped.
pub struct Running(Helper);

impl Helper {
    /// Notes the helper process `pid`, which leads a process group of its own
    /// when `own_group`.
    pub fn started(pid: u32, own_group: bool) -> Running {
        let helper = Helper { pid, own_group };
        let s = signals();
        let mut state = s.state();
        state.helpers.push(helper);
        s.decide(&state);
        Running(helper)
    }

    /// Sends `signal` to the helper, and to its whole group when it leads one.
    fn signal(self, signal: libc::c_int) {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return;
        };
        if pid <= 1 {
            return;
        }
        // A negative pid names the process group it leads.
        let target = if self.own_group { -pid } else { pid };
        // SAFETY: kill(2) takes plain integers and touches no memory of ours
        // (std has no call that reaches a process group).
        unsafe {
            libc::kill(target, signal);
        }
    }
}

impl Running {
    /// Ends the helper (and its group): SIGTERM, then SIGKILL to what is
    /// left once `exited` says it is gone or `HELPER_GRACE` has passed.
    pub fn end(&self, mut exited: impl FnMut() -> bool) {
        self.0.signal(libc::SIGTERM);
        let until = Instant::now() + HELPER_GRACE;
        while !exited() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.0.signal(libc::SIGKILL);
    }
}

impl Drop for Running {
    /// A signal caught while the helper ran, and not asking for a graceful
    /// stop, now ends the process as it would have at once.
    fn drop(&mut self) {
        let s = signals();
        let graceful = {
            let mut state = s.state();
            state.helpers.retain(|h| *h != self.0);
            s.decide(&state);
            state.graceful
        };
        if let (false, Some(_)) = (graceful, s.caught()) {
            end_as_by_default(s.caught.load(Ordering::SeqCst));
        }
    }
}

/// Ends every helper in `helpers`: SIGTERM, a moment, SIGKILL.
fn end_helpers(helpers: &[Helper]) {
    if helpers.is_empty() {
        return;
    }
    for h in helpers {
        h.signal(libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(200));
    for h in helpers {
        h.signal(libc::SIGKILL);
    }
}

/// Ends the process as `signal` does by default (exit status 128 + signal).
fn end_as_by_default(signal: usize) -> ! {
    if let Ok(signal) = libc::c_int::try_from(signal) {
        let _ = signal_hook::low_level::emulate_default_handler(signal);
    }
    std::process::exit(128 + signal as i32);
}

/// Cancellation by SIGTERM, SIGINT or SIGHUP, shared with whoever must stop early.
#[derive(Debug, Default)]
pub struct Cancel {
    signal: Arc<AtomicUsize>,
    seen_at: Arc<OnceLock<Instant>>,
}

impl Cancel {
    /// SIGTERM, SIGINT and SIGHUP ask for a graceful stop from now on (see
    /// `signals`): SIGHUP (a closed terminal, a supervisor stopping its
    /// children) too. SIGQUIT keeps its default action (stop at once, with a
    /// core dump where enabled): it is the signal for debugging, and nothing
    /// unsent is ever echoed as safe, so no checkpoint is wrong.
    pub fn install() -> Arc<Cancel> {
        let (signal, seen_at) = stop_gracefully();
        Arc::new(Cancel { signal, seen_at })
    }

    /// The signal's name once one arrived.
    pub fn signal(&self) -> Option<&'static str> {
        name(self.signal.load(Ordering::Relaxed))
    }

    /// When the signal was first noticed, if it arrived.
    pub fn since(&self) -> Option<Instant> {
        self.signal()?;
        Some(*self.seen_at.get_or_init(Instant::now))
    }
}
