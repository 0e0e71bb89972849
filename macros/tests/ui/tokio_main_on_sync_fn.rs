#[leakcheck::leak_check]
#[tokio::main]
#[test]
fn check() {}

fn main() {}
