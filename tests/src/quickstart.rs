//! The quickstart example as a child process, and its output parsed step
//! by step against the dask Client page.

use crate::procs::{Host, Proc, QUICKSTART_TIMEOUT, Run, example};
use std::path::Path;

/// Runs the quickstart example on `host`, against `scheduler_file` or (with
/// `None`) its own embedded LocalCluster, to its end.
pub fn run_quickstart(host: Host<'_>, scheduler_file: Option<&Path>) -> Run {
    let mut cmd = host.command(&example("quickstart"));
    if let Some(f) = scheduler_file {
        cmd.arg("--scheduler-file").arg(f);
    }
    let mut proc = Proc::spawn("quickstart", cmd);
    let status = proc.wait(QUICKSTART_TIMEOUT);
    Run {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// What the quickstart printed, step by step, each step checked against
/// the dask Client page as it is parsed.
#[derive(Debug)]
pub struct Quickstart {
    /// Workers the client saw (`… with N workers`).
    pub workers: usize,
    /// The key of `x = submit(inc, 10)`.
    pub x: String,
    /// The keys of `L[0]` and `L[1]` (`inc(0)`, `inc(1)`).
    pub l01: (String, String),
    /// The one key of the two identical pure calls `inc(5000)`.
    pub a: String,
    /// The two keys of the `pure(false)` calls.
    pub r: (String, String),
}

/// Whether `key` is `inc-<32 lower-case hex>`.
pub fn is_pure_inc_key(key: &str) -> bool {
    key.strip_prefix("inc-").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// Whether `key` is `inc-<uuid4>`, hyphenated lower-case.
pub fn is_uuid_inc_key(key: &str) -> bool {
    let Some(uuid) = key.strip_prefix("inc-") else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

impl Quickstart {
    /// Parses and checks `stdout`; panics naming the first step that is
    /// missing or wrong, with the whole output.
    pub fn parse(stdout: &str) -> Quickstart {
        let lines: Vec<&str> = stdout.lines().collect();
        let fail = |what: &str| -> ! { panic!("quickstart: {what}\n{stdout}") };
        // The line right after the prompt `>>> <step>`.
        let answer = |step: &str| -> &str {
            let at = lines
                .iter()
                .position(|l| l.strip_prefix(">>> ") == Some(step))
                .unwrap_or_else(|| fail(&format!("no step {step:?}")));
            lines
                .get(at + 1)
                .unwrap_or_else(|| fail(&format!("no answer to {step:?}")))
        };
        let value = |prefix: &str| -> &str {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| fail(&format!("no {prefix:?} line")))
        };
        // `<Future: pending, key: K>` (finished if it was that quick).
        let future_key = |text: &str| -> String {
            let key = text
                .strip_prefix("<Future: pending, key: ")
                .or_else(|| text.strip_prefix("<Future: finished, key: "))
                .and_then(|k| k.strip_suffix('>'))
                .unwrap_or_else(|| fail(&format!("not a future: {text:?}")));
            if !is_pure_inc_key(key) {
                fail(&format!("not a pure inc key: {key:?}"));
            }
            key.to_string()
        };

        let workers = lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("<Client ")?
                    .split(" with ")
                    .nth(1)?
                    .strip_suffix(" workers")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| fail("no `<Client …> with N workers` line"));
        let x = future_key(answer("x = client.submit(inc, 10)"));
        if answer("x.result()") != "11" {
            fail("x.result() is not 11");
        }
        let futures = answer("L = client.map(inc, range(1000))");
        let l = futures
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(", ... 1000 futures]"))
            .unwrap_or_else(|| fail("no list of 1000 futures"));
        let (l0, l1) = l
            .split_once(">, ")
            .unwrap_or_else(|| fail("not two futures before the count"));
        let l01 = (future_key(&format!("{l0}>")), future_key(l1));
        if answer("y.result()") != "12" {
            fail("y.result() is not 12");
        }
        if answer("total.result()") != "500500" {
            fail("total.result() is not 500500");
        }
        if answer("client.gather(L)") != "[1, 2, 3, ..., 1000] (1000 results)" {
            fail("gather(L) is not 1..=1000");
        }
        let (a, b) = (value("a.key = "), value("b.key = "));
        if a != b || !is_pure_inc_key(a) {
            fail("the identical pure calls do not share one pure key");
        }
        if !lines.contains(&"keys equal: true, results: 5001 5001, executions: 1") {
            fail("the identical pure calls were not computed once");
        }
        let (r1, r2) = (value("r1.key = "), value("r2.key = "));
        if r1 == r2 || !is_uuid_inc_key(r1) || !is_uuid_inc_key(r2) {
            fail("the pure(false) calls do not have two uuid4 keys");
        }
        if !lines.contains(&"keys differ: true, results: 2 2") {
            fail("the pure(false) calls did not both give 2");
        }
        if lines.last() != Some(&"quickstart: all steps OK") {
            fail("it does not end with `quickstart: all steps OK`");
        }
        let mut keys = [&x, &l01.0, &l01.1, &a.to_string()].map(|k| k.to_string());
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            fail("distinct calls share a key");
        }
        Quickstart {
            workers,
            x,
            l01,
            a: a.to_string(),
            r: (r1.to_string(), r2.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
>>> cluster = LocalCluster(n_workers=2)
<Client 3 to 127.0.0.1:56202> with 2 workers
>>> math = client.load_module(\"math.wasm\")
    inc(i64) -> i64

>>> x = client.submit(inc, 10)
<Future: pending, key: inc-ea3d2f53a79a26b94daa3070edbab259>
>>> x.result()
11

>>> L = client.map(inc, range(1000))
[<Future: pending, key: inc-ad221bf24f10af41d98e3f73d5503a98>, <Future: finished, key: inc-a03130b63599976a70a7ed853ea11cc3>, ... 1000 futures]

>>> y = client.submit(inc, x)
>>> y.result()
12

>>> total = client.submit(sum, L)
>>> total.result()
500500

>>> client.gather(L)
[1, 2, 3, ..., 1000] (1000 results)

>>> a = client.submit(inc, 5000); b = client.submit(inc, 5000)   # pure: same key, computed once
a.key = inc-e5ad793fcea4c9ecb9f4136a53171021
b.key = inc-e5ad793fcea4c9ecb9f4136a53171021
keys equal: true, results: 5001 5001, executions: 1

>>> r1 = client.submit(inc, 1, pure=False); r2 = client.submit(inc, 1, pure=False)
r1.key = inc-36e46d21-bae6-42e4-80f5-385d5b8ed4be
r2.key = inc-3f6a0519-b5bf-4bbf-94f2-edb42b6c9450
keys differ: true, results: 2 2

quickstart: all steps OK
";

    #[test]
    fn parses_the_quickstart() {
        let q = Quickstart::parse(OUTPUT);
        assert_eq!(q.workers, 2);
        assert_eq!(q.x, "inc-ea3d2f53a79a26b94daa3070edbab259");
        assert_eq!(q.l01.1, "inc-a03130b63599976a70a7ed853ea11cc3");
        assert_eq!(q.a, "inc-e5ad793fcea4c9ecb9f4136a53171021");
        assert_eq!(q.r.1, "inc-3f6a0519-b5bf-4bbf-94f2-edb42b6c9450");
    }

    #[test]
    fn refuses_a_wrong_step() {
        for (right, wrong) in [
            ("\n11\n", "\n111\n"),
            ("500500", "500501"),
            ("executions: 1", "executions: 2"),
            ("b.key = inc-e5ad", "b.key = inc-f5ad"),
            ("inc-ea3d2f53a79a26b94daa3070edbab259", "inc-ea3d2f53"),
            (
                "r2.key = inc-3f6a0519-b5bf-4",
                "r2.key = inc-3f6a0519-b5bf-1",
            ),
            ("..., 1000]", "..., 999]"),
            ("all steps OK\n", "all steps OK\nmore\n"),
        ] {
            assert!(OUTPUT.contains(right), "{right}");
            let broken = OUTPUT.replacen(right, wrong, 1);
            let parsed = std::panic::catch_unwind(|| Quickstart::parse(&broken));
            assert!(parsed.is_err(), "accepted {wrong:?} for {right:?}");
        }
    }
}
