#[leakcheck::leak_check(settle = "0ms")]
fn check() {}

fn main() {}
