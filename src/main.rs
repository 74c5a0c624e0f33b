//! The `replaydesk` binary: everything lives in the library; see `replaydesk --help`.

fn main() -> std::process::ExitCode {
    replaydesk::cli::main()
}
