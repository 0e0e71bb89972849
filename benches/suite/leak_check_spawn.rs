//! The suite of `tokio_test.rs` with `#[leak_check]` added and its task
//! spawned by `leakcheck::spawn`, so it is tracked.

macro_rules! one_test {
    ($name:ident) => {
        #[leakcheck::leak_check]
        #[tokio::test]
        async fn $name() {
            leakcheck::spawn(async {}).await.unwrap();
        }
    };
}

include!("ten.rs");
