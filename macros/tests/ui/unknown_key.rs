#[leakcheck::leak_check(timeout = "1s")]
fn check() {}

fn main() {}
