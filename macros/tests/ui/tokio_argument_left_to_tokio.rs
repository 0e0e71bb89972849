// An invalid combination of tokio's own arguments is tokio's to report.
#[leakcheck::leak_check]
#[tokio::test(flavor = "current_thread", worker_threads = 2)]
async fn check() {}

fn main() {}
