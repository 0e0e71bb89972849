#[leakcheck::leak_check]
fn check(workers: usize) {
    let _ = workers;
}

fn main() {}
