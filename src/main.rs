use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything else can touch OpenSSL: see `store::init_openssl`.
    latchkey::store::init_openssl();
    latchkey::cli::run()
}
