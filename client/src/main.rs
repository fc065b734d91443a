fn main() {
    println!("kith {}", env!("CARGO_PKG_VERSION"));
}
