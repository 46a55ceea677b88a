// jemalloc instead of the system allocator: under load the glibc allocator's arena locks and
// consolidation showed as ~8 % of the server's CPU (BENCHMARKS.md). Its settings: .cargo/config.toml.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    alert_relay::cli::main()
}
