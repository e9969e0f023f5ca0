//! The `rungate` binary: everything lives in the library so tests and benchmarks can embed it.

fn main() -> std::process::ExitCode {
    rungate::cli::main()
}
