//! The `wask` binary end to end: an embedded cluster (real QUIC on
//! loopback, real wasmtime) in this process, its scheduler file on disk, and
//! the binary run as a child process against it with the math guest.

use std::path::{Path, PathBuf};
use wask::{Client, LocalCluster};

const MATH: &str = env!("WASK_GUEST_MATH");

/// What a run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The text after `prefix` on the stdout line that starts with it.
    #[track_caller]
    fn line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", self.stdout))
    }
}

/// Runs `wask ARGS` on a blocking thread: the cluster's tasks keep running
/// on the runtime's workers while the child talks to it.
async fn wask(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wask"))
            .args(&args)
            .env_remove("WASK_TOKEN")
            .env_remove("RUST_LOG")
            .output()
            .expect("running the wask binary");
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// Starts `wask ARGS`, waits for its `key:` line, then interrupts it as
/// Ctrl-C would (SIGINT) and returns what it gave.
async fn interrupted(args: &[&str]) -> Run {
    use std::io::{BufRead, Read};
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wask"))
            .args(&args)
            .env_remove("WASK_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running the wask binary");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        assert!(out.starts_with("key: "), "{out:?}");
        // The handler is installed before the key is printed.
        let kill = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        stdout.read_to_string(&mut out).unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        Run {
            code: status.code().expect("exited, not killed by the signal"),
            stdout: out,
            stderr: err,
        }
    })
    .await
    .unwrap()
}

/// `wask submit --scheduler-file FILE MATH <rest>`.
async fn submit(file: &Path, rest: &[&str]) -> Run {
    let file = file.to_str().unwrap();
    let mut args = vec!["submit", "--scheduler-file", file, MATH];
    args.extend_from_slice(rest);
    wask(&args).await
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wask-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_lists_signatures_and_refuses_bad_modules() {
    let run = wask(&["tasks", MATH]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    for expected in [
        "inc(i64) -> i64",
        "add(i64, i64) -> i64",
        "sum(Vec<i64>) -> i64",
        "mean(Vec<f64>) -> f64",
        "concat(Vec<String>) -> String",
    ] {
        assert!(lines.contains(&expected), "{expected} in {lines:?}");
    }

    let bad = scratch_dir("tasks").join("bad.wasm");
    std::fs::write(&bad, b"not wasm at all").unwrap();
    let run = wask(&["tasks", bad.to_str().unwrap()]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.starts_with("error: module ") && run.stderr.contains("invalid wasm"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_and_info_against_a_cluster() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let file = scratch_dir("submit").join("scheduler.json");
    cluster.address().write_file(&file).unwrap();

    // inc 10 → 11, under the key a typed Client gives the same call.
    let run = submit(&file, &["inc", "10"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.line("result: "), "11");
    let key = run.line("key: ").to_string();
    let hex = key.strip_prefix("inc-").expect("key starts with the task");
    assert_eq!(hex.len(), 32);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let x = client.submit(&inc, (10,)).unwrap();
    assert_eq!(x.key(), key);
    assert_eq!(x.result().await.unwrap(), 11);

    // Lists, strings, floats, several parameters, negative numbers.
    let run = submit(&file, &["sum", "[1,2,3]"]).await;
    assert_eq!(run.line("result: "), "6", "{}", run.stderr);
    let run = submit(&file, &["concat", r#"["a","b"]"#]).await;
    assert_eq!(run.line("result: "), r#""ab""#, "{}", run.stderr);
    let run = submit(&file, &["mean", "[1.5, 2.5]"]).await;
    assert_eq!(run.line("result: "), "2.0", "{}", run.stderr);
    let run = submit(&file, &["mean", "[]"]).await;
    assert_eq!(run.line("result: "), r#""NaN""#, "{}", run.stderr);
    let run = submit(&file, &["add", "-5", "3"]).await;
    assert_eq!(run.line("result: "), "-2", "{}", run.stderr);

    // --impure: a uuid key; --timeout: a task error, exit 1.
    let run = submit(&file, &["--impure", "inc", "10"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.line("result: "), "11");
    let uuid = run.line("key: ").strip_prefix("inc-").unwrap();
    assert_eq!((uuid.len(), uuid.matches('-').count()), (36, 4), "{uuid}");
    let run = submit(&file, &["--timeout", "0.2", "busy", "1", "100000000000"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.line("key: ").starts_with("busy-"));
    assert!(!run.stdout.contains("result"), "{}", run.stdout);
    assert_eq!(
        run.stderr.trim_end(),
        "error: task exceeded its time limit of 200 ms"
    );

    // Ctrl-C while waiting cancels the call and exits 1.
    let file_arg = file.to_str().unwrap();
    let run = interrupted(&[
        "submit",
        "--scheduler-file",
        file_arg,
        "--timeout",
        "2",
        MATH,
        "busy",
        "2",
        "100000000000",
    ])
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stdout.contains("result"), "{}", run.stdout);
    assert_eq!(
        run.stderr.trim_end(),
        "error: interrupted: the call was cancelled"
    );

    // Bad command lines: exit 2 with a message naming the argument, before
    // anything is submitted.
    let run = submit(&file, &["inc", "x"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .starts_with("error: argument 1 (i64) of inc(i64) -> i64: \"x\" is not JSON"),
        "{}",
        run.stderr
    );
    let run = submit(&file, &["sum", r#"[1,"x"]"#]).await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim_end(),
        "error: argument 1 (Vec<i64>) of sum(Vec<i64>) -> i64: at [1]: expected an integer for i64, found \"x\""
    );
    let run = submit(&file, &["add", "1"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim_end(),
        "error: add(i64, i64) -> i64 takes 2 arguments, 1 given"
    );
    let run = submit(&file, &["nope"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no task \"nope\"") && run.stderr.contains("inc(i64) -> i64"),
        "{}",
        run.stderr
    );

    // --args-postcard-hex replaces ARGS: (41i64,) is zigzag 82 = 0x52.
    let run = submit(&file, &["--args-postcard-hex", "52", "inc"]).await;
    assert_eq!(run.line("result: "), "42", "{}", run.stderr);

    // info: both workers, with what they ran.
    let run = wask(&["info", "--scheduler-file", file.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("id  name") && lines[0].ends_with("executed"),
        "{}",
        run.stdout
    );
    assert_eq!(run.line("workers: "), "2");
    // Only x, held by the client above: each run of the binary closed its
    // connection on exit, so the cluster forgot its keys.
    assert_eq!(run.line("tasks: "), "1", "{}", run.stdout);
    let executed: u64 = lines[1..3]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(executed >= 8, "{}", run.stdout);

    // A scheduler that is gone: exit 1 with the reason.
    client.close();
    cluster.shutdown().await;
    let run = wask(&[
        "info",
        "--connect-timeout",
        "0.5",
        "--scheduler-file",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.starts_with("error: connecting with "),
        "{}",
        run.stderr
    );
}

/// JSON arguments and results of bools, tuples and options, end to end
/// through the math guest's `tagged(bool, (i64, String), Option<i64>)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_bools_tuples_and_options() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let file = scratch_dir("submit-json").join("scheduler.json");
    cluster.address().write_file(&file).unwrap();

    let run = wask(&["tasks", MATH]).await;
    assert!(
        run.stdout
            .lines()
            .any(|l| l == "tagged(bool, (i64,String), Option<i64>) -> (bool,String,Option<i64>)"),
        "{}",
        run.stdout
    );

    let run = submit(&file, &["tagged", "true", r#"[2, "x"]"#, "40"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.line("result: "), r#"[true,"x",42]"#);
    let run = submit(&file, &["tagged", "true", r#"[-2,"y"]"#, "null"]).await;
    assert_eq!(run.line("result: "), r#"[true,"y",-2]"#, "{}", run.stderr);
    let run = submit(&file, &["tagged", "false", r#"[2,""]"#, "7"]).await;
    assert_eq!(run.line("result: "), r#"[false,"",null]"#, "{}", run.stderr);

    // The key is the one a typed client gets for the same call.
    let run = submit(&file, &["tagged", "true", r#"[1,"k"]"#, "null"]).await;
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let tagged = math
        .task::<(bool, (i64, String), Option<i64>), (bool, String, Option<i64>)>("tagged")
        .unwrap();
    let typed = client
        .submit(&tagged, (true, (1, "k".to_string()), None::<i64>))
        .unwrap();
    assert_eq!(typed.key(), run.line("key: "));
    assert_eq!(
        typed.result().await.unwrap(),
        (true, "k".to_string(), Some(1))
    );

    // Wrong shapes: exit 2, naming the argument and what was expected.
    for (args, want) in [
        (["1", r#"[2,"x"]"#, "40"], "argument 1 (bool)"),
        (["true", r#"[2]"#, "40"], "argument 2 ((i64,String))"),
        (["true", r#"[2,"x",3]"#, "40"], "argument 2 ((i64,String))"),
        (["true", r#"["x",2]"#, "40"], "argument 2 ((i64,String))"),
        (
            ["true", r#"[2,"x"]"#, r#""40""#],
            "argument 3 (Option<i64>)",
        ),
    ] {
        let mut rest = vec!["tagged"];
        rest.extend(args);
        let run = submit(&file, &rest).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
    }
    client.close();
    cluster.shutdown().await;
}

/// Runs `wask ARGS` with `WASK_TOKEN` set to `token`.
async fn wask_with_token_env(args: &[&str], token: &str) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let token = token.to_string();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wask"))
            .args(&args)
            .env("WASK_TOKEN", token)
            .env_remove("RUST_LOG")
            .output()
            .expect("running the wask binary");
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_the_flag_or_wask_token() {
    const TOKEN: &str = "cli-tenant-token-0123456789abcdef";
    let tenants = format!(
        "[[tenant]]\nname = \"cli\"\ntoken_blake3 = \"{}\"\n",
        wask_scheduler::tenants::hash_token(TOKEN)
    );
    let cluster = LocalCluster::builder()
        .workers(1)
        .tenants(tenants)
        .start()
        .await
        .unwrap();
    let file = scratch_dir("token").join("scheduler.json");
    cluster.address().write_file(&file).unwrap();
    let file = file.to_str().unwrap();
    let refusal = format!(
        "error: connecting with {file}: scheduler refused the connection: invalid or missing token"
    );

    // The right token, given with --token or in WASK_TOKEN.
    let run = submit(Path::new(file), &["--token", TOKEN, "inc", "1"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.line("result: "), "2");
    let run = wask_with_token_env(&["info", "--scheduler-file", file], TOKEN).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.line("workers: "), "1");

    // No token, a wrong one, or a wrong one that --token puts before the
    // right WASK_TOKEN: refused at connect, exit 1, saying why.
    for run in [
        wask(&["info", "--scheduler-file", file]).await,
        wask(&["info", "--scheduler-file", file, "--token", "wrong"]).await,
        wask_with_token_env(&["info", "--scheduler-file", file], "wrong").await,
        wask_with_token_env(
            &["info", "--scheduler-file", file, "--token", "wrong"],
            TOKEN,
        )
        .await,
        submit(Path::new(file), &["inc", "1"]).await,
    ] {
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert_eq!(run.stderr.trim_end(), refusal);
    }
    cluster.shutdown().await;
}
