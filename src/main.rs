fn main() {
    std::process::exit(coupler::cli::main());
}
