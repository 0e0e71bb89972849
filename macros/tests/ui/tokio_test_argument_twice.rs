#[leakcheck::leak_check(flavor = "current_thread")]
#[tokio::test(flavor = "multi_thread")]
async fn check() {}

fn main() {}
