#[leakcheck::leak_check(settle = "1.5s")]
fn check() {}

fn main() {}
