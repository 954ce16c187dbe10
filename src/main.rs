fn main() -> std::process::ExitCode {
    matriochka::run()
}
