#[leakcheck::leak_check(settle = "1s", settle = "2s")]
fn check() {}

fn main() {}
