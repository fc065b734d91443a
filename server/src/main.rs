fn main() {
    println!("kithd {}", env!("CARGO_PKG_VERSION"));
}
