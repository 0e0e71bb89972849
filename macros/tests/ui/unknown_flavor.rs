#[leakcheck::leak_check(flavor = "single_thread")]
async fn check() {}

fn main() {}
