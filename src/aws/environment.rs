//! The process environment as the credential chain, network settings and
//! endpoint resolution read it: one lookup function, so tests can pass their own.

/// Looks up an environment variable; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
