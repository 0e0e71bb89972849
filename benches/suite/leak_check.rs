//! The suite of `tokio_test.rs` with `#[leak_check]` added and nothing else
//! changed: the plain `tokio::spawn` is seen through leakcheck's runtime.

macro_rules! one_test {
    ($name:ident) => {
        #[leakcheck::leak_check]
        #[tokio::test]
        async fn $name() {
            tokio::spawn(async {}).await.unwrap();
        }
    };
}

include!("ten.rs");
