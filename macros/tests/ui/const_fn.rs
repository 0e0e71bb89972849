#[leakcheck::leak_check]
const fn check() {}

fn main() {}
