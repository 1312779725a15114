//! The run's settings: a fixed seed and a bounded case count by default, so
//! `cargo test` is reproducible and short; `CKPT_FUZZ_SEED` picks another
//! seed and `CKPT_FUZZ_SCALE` multiplies every target's case count, for a
//! longer campaign (`tools/fuzz/campaign.mjs`).
//! A failing case is saved beside its target (`tests/fuzz_<name>.regressions`)
//! and replayed first on every later run: commit it with the fix.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How one input ended, for the run's tally.
pub enum Outcome {
    Accepted,
    Refused,
}

/// Runs `target` over `default_cases` inputs from `strategy` (replaying the
/// saved regressions of `source` first) and prints what ran: the executions
/// and how many inputs were accepted and refused.
pub fn run<S: Strategy>(
    name: &str,
    source: &'static str,
    default_cases: u32,
    strategy: S,
    target: impl Fn(S::Value) -> Result<Outcome, TestCaseError>,
) {
    let config = Config { source_file: Some(source), ..config(default_cases) };
    let seed = match config.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => 0,
    };
    let (accepted, refused) = (AtomicU64::new(0), AtomicU64::new(0));
    let result = TestRunner::new(config).run(&strategy, |value| {
        let tally = match target(value)? {
            Outcome::Accepted => &accepted,
            Outcome::Refused => &refused,
        };
        tally.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    let (accepted, refused) = (accepted.into_inner(), refused.into_inner());
    eprintln!("fuzz {name}: seed {seed}, {} executions, {accepted} accepted, {refused} refused", accepted + refused);
    if let Err(failure) = result {
        panic!("fuzz {name} found a failing input (saved beside the target as .regressions): {failure}");
    }
}

/// A target's settings: the fixed seed, the case count and where failures are kept.
pub fn config(default_cases: u32) -> Config {
    let scale = env_number("CKPT_FUZZ_SCALE").unwrap_or(1);
    let cases = u32::try_from(u64::from(default_cases) * scale).expect("CKPT_FUZZ_SCALE is too large");
    let seed = env_number("CKPT_FUZZ_SEED").unwrap_or(20_20);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        // Shrinking a slow case (an HTTP exchange) must stay bounded too.
        max_shrink_time: 60_000,
        ..Config::default()
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(text.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")))
}

/// The shared fixtures written by real torch and safetensors (`../shared/fixtures`).
pub fn shared_fixtures(extension: &str) -> Vec<(String, Vec<u8>)> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/fixtures");
    let mut seeds: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("the shared fixtures are missing at {}: {e}", folder.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no .{extension} seeds in {}", folder.display());
    seeds
}

/// Runs `work` on its own thread, failing the case if it has not returned
/// within `budget`: the no-hang property (a watchdog far above the normal
/// time, not a speed test). A hung thread is left behind; the run fails anyway.
pub fn within<T: Send + 'static>(budget: Duration, what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = send.send(work());
    });
    match receive.recv_timeout(budget) {
        Ok(value) => {
            let _ = worker.join();
            value
        }
        // The sender was dropped without a value: the work panicked; re-raise its panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker returned without sending"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what} is still running after {budget:?}"),
    }
}
