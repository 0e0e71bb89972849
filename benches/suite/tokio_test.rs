//! 500 trivial `#[tokio::test]`s, each spawning and awaiting one task: the
//! plain suite that `leak_check.rs` and `leak_check_spawn.rs` are measured
//! against (`benches/suite.sh`).

macro_rules! one_test {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            tokio::spawn(async {}).await.unwrap();
        }
    };
}

include!("ten.rs");
