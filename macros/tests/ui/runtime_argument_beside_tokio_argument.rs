#[leakcheck::leak_check(name = "rt")]
#[tokio::test(flavor = "current_thread", worker_threads = 2)]
async fn check() {}

fn main() {}
