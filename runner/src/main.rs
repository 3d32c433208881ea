//! The `hookrun` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    hookrun::cli::main()
}
