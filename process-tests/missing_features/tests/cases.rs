// Each needs a tokio feature this crate's tokio doesn't have.

#[leakcheck::leak_check]
#[tokio::test(flavor = "multi_thread")]
async fn needs_rt_multi_thread() {}

#[leakcheck::leak_check]
#[tokio::test(start_paused = true)]
async fn needs_test_util() {}

#[leakcheck::leak_check]
#[tokio::test(unhandled_panic = "ignore")]
async fn needs_tokio_unstable() {}
