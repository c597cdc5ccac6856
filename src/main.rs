//! The `tocsin` binary: hands over to [`tocsin::cli`].

fn main() -> std::process::ExitCode {
    tocsin::cli::main()
}
