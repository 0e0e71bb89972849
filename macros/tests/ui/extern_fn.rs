#[leakcheck::leak_check]
extern "C" fn check() {}

fn main() {}
