//! Rebuild when a migration is added or changed, so the embedded migrator is never stale.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
