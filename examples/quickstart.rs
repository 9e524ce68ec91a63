//! The seed's example session, step by step as on dask's Client page:
//! a cluster of 2 workers, `submit`, `map`, futures as arguments, `gather`,
//! deduplication of pure calls and `pure(false)`.
//!
//! Run: `cargo run --release --example quickstart`
//! (or `-- --scheduler-file F` to use an external cluster).

use anyhow::Context;
use wask::{Client, LocalCluster, Options};

fn scheduler_file() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--scheduler-file" {
            return args.next();
        }
        if let Some(f) = a.strip_prefix("--scheduler-file=") {
            return Some(f.to_string());
        }
    }
    None
}

async fn executed(client: &Client) -> anyhow::Result<u64> {
    Ok(client
        .info()
        .await?
        .workers
        .iter()
        .map(|w| w.executed)
        .sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cluster = None;
    let client = match scheduler_file() {
        Some(f) => {
            println!(">>> client = Client(scheduler_file={f:?})");
            Client::connect(f.as_str()).await?
        }
        None => {
            println!(">>> cluster = LocalCluster(n_workers=2)");
            let c = LocalCluster::start(2).await?;
            let client = Client::connect(c.address()).await?;
            cluster = Some(c);
            client
        }
    };
    let outcome = session(&client).await;
    // Waits until the scheduler has been told, so that it forgets this
    // session's keys now rather than at the idle timeout.
    client.shutdown().await;
    if let Some(c) = cluster {
        c.shutdown().await;
    }
    outcome?;
    println!("\nquickstart: all steps OK");
    Ok(())
}

async fn session(client: &Client) -> anyhow::Result<()> {
    let info = client.info().await?;
    println!("{client:?} with {} workers", info.workers.len());

    let math = client
        .load_module(env!("WASK_GUEST_MATH"))
        .await
        .context("loading math.wasm")?;
    println!(">>> math = client.load_module(\"math.wasm\")");
    for t in math.tasks() {
        println!("    {}", t.display());
    }
    let inc = math.task::<(i64,), i64>("inc")?;
    let sum = math.task::<(Vec<i64>,), i64>("sum")?;

    println!("\n>>> x = client.submit(inc, 10)");
    let x = client.submit(&inc, (10,))?;
    println!("{x:?}");
    println!(">>> x.result()");
    println!("{}", x.result().await?);

    println!("\n>>> L = client.map(inc, range(1000))");
    let l = client.map(&inc, (0..1000).map(|i| (i,)))?;
    println!("[{:?}, {:?}, ... {} futures]", l[0], l[1], l.len());

    println!("\n>>> y = client.submit(inc, x)");
    let y = client.submit(&inc, (&x,))?;
    println!(">>> y.result()");
    println!("{}", y.result().await?);

    println!("\n>>> total = client.submit(sum, L)");
    let total = client.submit(&sum, (&l,))?;
    println!(">>> total.result()");
    let t = total.result().await?;
    println!("{t}");
    anyhow::ensure!(t == 500500, "sum of inc(0..1000) is {t}, not 500500");

    println!("\n>>> client.gather(L)");
    let all = client.gather(&l).await?;
    println!(
        "[{}, {}, {}, ..., {}] ({} results)",
        all[0],
        all[1],
        all[2],
        all[999],
        all.len()
    );
    anyhow::ensure!(
        all == (1..=1000).collect::<Vec<i64>>(),
        "gather returned wrong results"
    );

    println!(
        "\n>>> a = client.submit(inc, 5000); b = client.submit(inc, 5000)   # pure: same key, computed once"
    );
    let before = executed(client).await?;
    let a = client.submit(&inc, (5000,))?;
    let b = client.submit(&inc, (5000,))?;
    let (ra, rb) = (a.result().await?, b.result().await?);
    let runs = executed(client).await? - before;
    println!("a.key = {}\nb.key = {}", a.key(), b.key());
    println!(
        "keys equal: {}, results: {ra} {rb}, executions: {runs}",
        a.key() == b.key()
    );
    // 0 executions when another client of a shared cluster holds the
    // result already: it is not computed again either.
    anyhow::ensure!(
        a.key() == b.key() && runs <= 1,
        "pure calls were not deduplicated"
    );

    println!(
        "\n>>> r1 = client.submit(inc, 1, pure=False); r2 = client.submit(inc, 1, pure=False)"
    );
    let impure = Options::new().pure(false);
    let r1 = client.submit_with(&inc, (1,), &impure)?;
    let r2 = client.submit_with(&inc, (1,), &impure)?;
    println!("r1.key = {}\nr2.key = {}", r1.key(), r2.key());
    println!(
        "keys differ: {}, results: {} {}",
        r1.key() != r2.key(),
        r1.result().await?,
        r2.result().await?
    );
    anyhow::ensure!(r1.key() != r2.key(), "impure calls got the same key");
    Ok(())
}
