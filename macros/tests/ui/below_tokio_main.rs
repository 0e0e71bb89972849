#[tokio::main]
#[leakcheck::leak_check]
#[test]
async fn check() {}

fn main() {}
