#[leakcheck::leak_check]
struct Worker;

fn main() {}
