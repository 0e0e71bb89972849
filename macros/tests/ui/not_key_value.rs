#[leakcheck::leak_check(settle)]
fn check() {}

fn main() {}
