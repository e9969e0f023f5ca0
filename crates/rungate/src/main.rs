//! The `rungate` binary: everything lives in the library so tests and benchmarks can embed it.

/// mimalloc: the hot path allocates on tokio workers and frees on the run writer thread; glibc's
/// arenas serialise that hand-over (malloc_consolidate, arena locks), mimalloc's free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rungate::cli::main()
}
