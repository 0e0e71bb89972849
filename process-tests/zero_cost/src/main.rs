//! Spawns through every leakcheck spawner, as a service's release build
//! would.

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let sum = runtime.block_on(async {
        let a = leakcheck::spawn(async { 1 }).await.unwrap();
        let b = leakcheck::spawn_blocking(|| 2).await.unwrap();
        let c = tokio::spawn(leakcheck::track(async { 3 })).await.unwrap();
        let d = leakcheck::Builder::new()
            .name("worker")
            .spawn(async { 4 })
            .await
            .unwrap();
        a + b + c + d
    });
    let e = leakcheck::thread::spawn(|| 5).join().unwrap();
    println!("{}", sum + e);
}
