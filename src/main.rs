use std::process::ExitCode;

fn main() -> ExitCode {
    latchkey::cli::run()
}
