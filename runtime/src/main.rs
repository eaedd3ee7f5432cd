//! `berth`: the runc-compatible command line.

mod cli;

fn main() {
    berth::trace::init_from_env();
    let code = cli::main();
    berth::trace::mark_memory();
    berth::trace::mark("exit");
    std::process::exit(code);
}
