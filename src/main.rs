fn main() -> std::process::ExitCode {
    alert_relay::cli::main()
}
