//! glibc's malloc arenas, capped at process start. Part of the binary only (`mod` in
//! `src/main.rs`, not in the library): what allocator settings a process runs with is
//! the program's choice, not the library's.
//!
//! glibc gives threads up to 8 malloc arenas per core, and memory freed into an arena
//! stays resident while anything else in it is live. A boot storm runs up to
//! `tftp::MAX_TRANSFERS` (256) `tftp-transfer` threads at once, each allocating its read
//! buffer and packets; they spread over many arenas, and what those held during the burst
//! was never returned to the system: 87.8 MB RSS at issue 16's memory bound
//! (`bench/run.sh memory`) for a live heap of 33 MB, against 57.5 MB with
//! `MALLOC_ARENA_MAX=2`, as `contrib/systemd/pxelab.service` runs it (BENCHMARKS.md,
//! "Memory at the bound"). So `pxelab` caps the arenas at [`ARENAS`] itself, and
//! `pxelab up` from a shell gets what the unit gets.
//!
//! A user's own choice wins: with `MALLOC_ARENA_MAX` (or an `arena_max` in
//! `GLIBC_TUNABLES`) in the environment, glibc has applied it and nothing is changed.

/// Arenas allowed: the main one and one shared by every other thread.
const ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`ARENAS`], unless the environment sets a cap of its
/// own. Call first thing in `main`, before any thread exists: an arena a thread has
/// taken stays in use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn cap() {
    if user_set(
        std::env::var_os("MALLOC_ARENA_MAX").is_some(),
        std::env::var("GLIBC_TUNABLES").ok().as_deref(),
    ) {
        return;
    }
    // SAFETY: mallopt(3) takes two integers and touches only the allocator's own
    // parameters (under its lock); M_ARENA_MAX is a parameter glibc defines, and a
    // refusal (return 0) leaves glibc's defaults, so the result needs no handling.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Other targets: another allocator, nothing to cap.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn cap() {}

/// How often free memory inside the arenas goes back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Returns the free pages inside glibc's arenas to the system every [`TRIM_EVERY`], on
/// a thread of its own.
///
/// Why: glibc gives memory back on its own only from the top of a heap. A boot storm's
/// TFTP burst (hundreds of transfer threads, each with its buffers) leaves its freed
/// chunks between live ones (event histories that grow all the while), and RSS stayed
/// at the burst's peak for good: 71-75 MB settled at issue 16's memory bound for about
/// 33 MB of live heap; with this, 66.7 MB settled after a 70.4 MB peak (one run,
/// BENCHMARKS.md). `malloc_trim(0)` releases every whole free page in every arena
/// (`madvise(MADV_DONTNEED)`), taking each arena's lock for as long as that walk lasts
/// (well under a millisecond for a heap of tens of MB), once per period.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn start_trimming() {
    let spawned = std::thread::Builder::new()
        .name("malloc-trim".to_string())
        .stack_size(64 * 1024)
        .spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            // SAFETY: malloc_trim(3) takes an integer and works on the allocator's own
            // state under its locks; its result (whether anything was released) is
            // not needed.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    if let Err(e) = spawned {
        tracing::debug!("no malloc-trim thread: {e}");
    }
}

/// Other targets: nothing to trim.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn start_trimming() {}

/// The user chose an arena cap: `MALLOC_ARENA_MAX` is set, or `GLIBC_TUNABLES` names
/// `glibc.malloc.arena_max`.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn user_set(malloc_arena_max: bool, tunables: Option<&str>) -> bool {
    malloc_arena_max
        || tunables.is_some_and(|t| {
            t.split(':')
                .any(|kv| kv.split('=').next() == Some("glibc.malloc.arena_max"))
        })
}

#[cfg(test)]
mod tests {
    use super::user_set;

    #[test]
    fn a_cap_the_user_set_in_the_environment_is_left_alone() {
        assert!(!user_set(false, None));
        assert!(user_set(true, None));
        assert!(user_set(false, Some("glibc.malloc.arena_max=4")));
        assert!(user_set(
            false,
            Some("glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1")
        ));
        assert!(!user_set(false, Some("glibc.malloc.tcache_count=0")));
        assert!(!user_set(false, Some("")));
    }
}
