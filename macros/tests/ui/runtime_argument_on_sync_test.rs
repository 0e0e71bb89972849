#[leakcheck::leak_check(flavor = "multi_thread")]
fn check() {}

fn main() {}
