#[leakcheck::leak_check(worker_threads = 2)]
async fn check() {}

fn main() {}
