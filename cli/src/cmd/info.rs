//! `wask info`: the cluster's workers as a table, and the task count.

use super::Connect;
use wask::ClusterInfo;

/// The options of `wask info`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connect: Connect,
}

/// Asks the scheduler and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.connect.client().await?;
    let info = client.info().await?;
    super::close(client).await;
    print!("{}", render(&info));
    Ok(())
}

const HEADER: [&str; 8] = [
    "id",
    "name",
    "address",
    "nthreads",
    "held bytes",
    "held keys",
    "processing",
    "executed",
];

/// The table (columns padded to their widest cell, numbers right-aligned),
/// then `workers: N`, `tasks: N`, `module uploads: N` and `data uploads: N`.
fn render(info: &ClusterInfo) -> String {
    let rows: Vec<[String; 8]> = info
        .workers
        .iter()
        .map(|w| {
            [
                w.id.to_string(),
                w.name.clone(),
                w.address.clone(),
                w.nthreads.to_string(),
                w.held_bytes.to_string(),
                w.held_keys.to_string(),
                w.processing.to_string(),
                w.executed.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric = |column: usize| !matches!(column, 1 | 2);
    let line = |cells: [&str; 8]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if numeric(i) {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(HEADER);
    for row in &rows {
        out += &line(row.each_ref().map(String::as_str));
    }
    out += &format!(
        "workers: {}\ntasks: {}\nmodule uploads: {}\ndata uploads: {}\n",
        info.workers.len(),
        info.tasks,
        info.module_uploads,
        info.data_uploads
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wask_proto::msg::WorkerInfo;

    #[test]
    fn renders_an_aligned_table() {
        let info = ClusterInfo {
            workers: vec![
                WorkerInfo {
                    id: 1,
                    name: "w1".into(),
                    address: "127.0.0.1:4000".into(),
                    nthreads: 2,
                    held_bytes: 1234567,
                    held_keys: 3,
                    processing: 0,
                    executed: 10,
                },
                WorkerInfo {
                    id: 12,
                    name: "a-longer-name".into(),
                    address: "10.0.0.2:4001".into(),
                    nthreads: 16,
                    ..WorkerInfo::default()
                },
            ],
            tasks: 5,
            module_uploads: 2,
            data_uploads: 3,
        };
        assert_eq!(
            render(&info),
            "\
id  name           address         nthreads  held bytes  held keys  processing  executed
 1  w1             127.0.0.1:4000         2     1234567          3           0        10
12  a-longer-name  10.0.0.2:4001         16           0          0           0         0
workers: 2
tasks: 5
module uploads: 2
data uploads: 3
"
        );
    }

    #[test]
    fn renders_an_empty_cluster() {
        assert_eq!(
            render(&ClusterInfo::default()),
            "id  name  address  nthreads  held bytes  held keys  processing  executed\nworkers: 0\ntasks: 0\nmodule uploads: 0\ndata uploads: 0\n"
        );
    }
}
