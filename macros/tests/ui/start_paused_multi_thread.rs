#[leakcheck::leak_check(flavor = "multi_thread", start_paused = true)]
async fn check() {}

fn main() {}
