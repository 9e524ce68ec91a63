//! `wask submit`: one call of a task, with its arguments given as JSON and
//! its result printed as JSON.
//!
//! The module's signature says each parameter's type; [`crate::json`]
//! turns the JSON into the postcard bytes a typed `wask::Client` would send,
//! so the call gets the same key as one from Rust. Everything about the
//! command line is checked before connecting.

use super::{Connect, UsageError, parse_seconds};
use crate::json;
use crate::types::Type;
use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use wask_proto::scheduler_file::{from_hex, to_hex};
use wask_proto::signature::TaskSignature;

/// The options of `wask submit`.
#[derive(clap::Args)]
#[command(after_help = "\
ARGS are JSON, one value per parameter of the task's signature (see `wask tasks`):
  integers and floats: 10, -3, 2.5 (i128/u128 past 64 bits: \"340282366920938463463374607431768211455\";
  floats also \"NaN\", \"inf\", \"-inf\"); bool: true; char: \"c\"; String: \"text\";
  Vec<T>, tuples and [T;N]: JSON arrays, e.g. '[1,2,3]' or '[7,\"a\"]'; Option<T>: null or the value; (): null.
A String or char parameter also takes bare text that is not a JSON string, as written.
Negative numbers need nothing special; other values starting with '-' go after `--`.

Output: `key: <key>` once submitted, then `result: <JSON>` (or `result-postcard-hex: <hex>` when the
result type is not one of the above). A task that fails prints `error: <message>` on stderr and exits 1.
Ctrl-C while waiting cancels the call.

Example: wask submit --scheduler-file scheduler.json math.wasm sum '[1,2,3]'")]
pub struct Args {
    #[command(flatten)]
    connect: Connect,
    /// Give the call a random key (TASK-<uuid4>), so it runs again instead
    /// of sharing the result of an identical pure call.
    #[arg(long)]
    impure: bool,
    /// Wall-time limit of the call in seconds, e.g. 2.5 (capped by the
    /// cluster; default: the cluster's).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// The whole argument tuple as postcard bytes in hex, instead of ARGS:
    /// for parameter types the CLI does not understand.
    #[arg(long, value_name = "HEX", conflicts_with = "args")]
    args_postcard_hex: Option<String>,
    /// The module: a .wasm file built with `#[wask_guest::task]`.
    #[arg(value_name = "MODULE.wasm")]
    module: PathBuf,
    /// The task to call (`wask tasks MODULE.wasm` lists them).
    #[arg(value_name = "TASK")]
    task: String,
    /// One JSON value per parameter of the task, in order.
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
}

/// Submits the call, prints its key, waits and prints its result.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let info = wask_proto::module::inspect(&wasm, &Default::default())
        .with_context(|| format!("module {} refused", args.module.display()))?;
    let (_, signature) = info.task(&args.task).ok_or_else(|| {
        let available: Vec<String> = info.tasks.iter().map(|t| t.display()).collect();
        UsageError(format!(
            "the module has no task {:?}; it has: {}",
            args.task,
            available.join(", ")
        ))
    })?;
    let call = match &args.args_postcard_hex {
        Some(hex) => from_hex(hex.trim()).ok_or_else(|| {
            UsageError(format!(
                "--args-postcard-hex {hex:?} is not an even number of hex digits"
            ))
        })?,
        None => encode_call(signature, &args.args)?,
    };
    // Not understood: printed as hex rather than refused, since the call
    // itself may still be fine.
    let result_type = Type::parse(&signature.result).ok();

    let client = args.connect.client().await?;
    let module = client.load_module_bytes(wasm).await?;
    let mut options = wask::Options::new().pure(!args.impure);
    if let Some(limit) = args.timeout {
        options = options.timeout(limit);
    }
    let future = client.submit_encoded(&module, &args.task, call, &options)?;
    // Listening before the key is printed: a Ctrl-C right after it (a
    // script reading the key) cancels the call instead of killing us.
    let mut interrupt = wask_net::shutdown::Shutdown::listen();
    println!("key: {}", future.key());
    let outcome = tokio::select! {
        outcome = future.result_bytes() => Some(outcome),
        _ = interrupt.signalled() => None,
    };
    if outcome.is_none() {
        // Closing the connection also makes the cluster forget the call;
        // cancelling says so at once.
        future.cancel();
    }
    drop(future);
    super::close(client).await;
    let Some(outcome) = outcome else {
        bail!("interrupted: the call was cancelled");
    };
    let bytes = match outcome {
        Ok(bytes) => bytes,
        // The key is on the line above; the error alone says what happened.
        Err(wask::Error::Task { error, .. }) => return Err(anyhow!("{error}")),
        Err(e) => return Err(e.into()),
    };
    let Some(ty) = result_type else {
        println!("result-postcard-hex: {}", to_hex(&bytes));
        return Ok(());
    };
    match json::decode(&ty, &bytes) {
        Ok(value) => {
            println!("result: {value}");
            Ok(())
        }
        Err(e) => {
            println!("result-postcard-hex: {}", to_hex(&bytes));
            Err(anyhow!("the result does not decode as {ty}: {e}"))
        }
    }
}

/// The postcard bytes of a whole call: each argument's encoding, in order
/// (postcard encodes a tuple as its fields back to back).
fn encode_call(signature: &TaskSignature, args: &[String]) -> Result<Vec<u8>, UsageError> {
    let shown = signature.display();
    if args.len() != signature.params.len() {
        return Err(UsageError(format!(
            "{shown} takes {} argument{}, {} given",
            signature.params.len(),
            if signature.params.len() == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let mut out = Vec::new();
    for (i, (param, text)) in signature.params.iter().zip(args).enumerate() {
        let which = format!("argument {} ({param}) of {shown}", i + 1);
        let ty = Type::parse(param).map_err(|e| {
            UsageError(format!(
                "{which}: {e}; pass the whole call as postcard bytes with --args-postcard-hex"
            ))
        })?;
        let value = argument_value(&ty, text).map_err(|e| {
            // Only a string nested in a list or tuple can be the culprit:
            // bare text at the top is taken as is.
            let hint = if param.contains("String") || param.contains("char") {
                r#"; strings inside are JSON strings, e.g. '["a","b"]'"#
            } else {
                ""
            };
            UsageError(format!("{which}: {text:?} is not JSON ({e}){hint}"))
        })?;
        json::encode(&ty, &value, &mut out).map_err(|e| UsageError(format!("{which}: {e}")))?;
    }
    Ok(out)
}

/// One argument's JSON. A `String` or `char` parameter also takes bare text
/// (`hello`, `42`), since quoting JSON strings in a shell is a chore; a JSON
/// string (`'"hello"'`) is still read as JSON, so any text can be passed.
fn argument_value(ty: &Type, text: &str) -> Result<Value, serde_json::Error> {
    let parsed = serde_json::from_str::<Value>(text);
    let bare = match ty {
        Type::String => true,
        Type::Char => text.chars().count() == 1,
        _ => false,
    };
    match parsed {
        Ok(v @ Value::String(_)) => Ok(v),
        _ if bare => Ok(Value::String(text.to_string())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(params: &[&str]) -> TaskSignature {
        TaskSignature {
            name: "f".into(),
            params: params.iter().map(|p| p.to_string()).collect(),
            result: "i64".into(),
        }
    }

    fn call(params: &[&str], args: &[&str]) -> Result<Vec<u8>, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        encode_call(&sig(params), &args).map_err(|e| e.0)
    }

    #[test]
    fn a_call_is_the_tuple_of_its_arguments() {
        assert_eq!(
            call(&["i64", "Vec<String>"], &["-3", r#"["a","b"]"#]).unwrap(),
            postcard::to_allocvec(&(-3i64, vec!["a", "b"])).unwrap()
        );
        assert_eq!(call(&[], &[]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn strings_and_chars_take_bare_text() {
        let expect = |s: &str| postcard::to_allocvec(&(s,)).unwrap();
        assert_eq!(
            call(&["String"], &["hello world"]).unwrap(),
            expect("hello world")
        );
        assert_eq!(
            call(&["String"], &[r#""quoted""#]).unwrap(),
            expect("quoted")
        );
        assert_eq!(call(&["String"], &["42"]).unwrap(), expect("42"));
        assert_eq!(
            call(&["String"], &[r#"["a"]"#]).unwrap(),
            expect(r#"["a"]"#)
        );
        assert_eq!(
            call(&["char"], &["x"]).unwrap(),
            postcard::to_allocvec(&'x').unwrap()
        );
        assert!(call(&["char"], &["xy"]).is_err());
        // Only at the top: inside a Vec, strings are JSON strings.
        let e = call(&["Vec<String>"], &["[a]"]).unwrap_err();
        assert!(
            e.ends_with(r#"strings inside are JSON strings, e.g. '["a","b"]'"#),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_argument() {
        let e = call(&["i64"], &[]).unwrap_err();
        assert_eq!(e, "f(i64) -> i64 takes 1 argument, 0 given");
        let e = call(&["i64", "i64"], &["1"]).unwrap_err();
        assert_eq!(e, "f(i64, i64) -> i64 takes 2 arguments, 1 given");
        let e = call(&["u8"], &["300"]).unwrap_err();
        assert_eq!(
            e,
            "argument 1 (u8) of f(u8) -> i64: 300 does not fit in u8 (0..=255)"
        );
        let e = call(&["i64", "i64"], &["1", "x"]).unwrap_err();
        assert!(
            e.starts_with("argument 2 (i64) of f(i64, i64) -> i64: \"x\" is not JSON"),
            "{e}"
        );
        let e = call(&["i64"], &[r#""x""#]).unwrap_err();
        assert_eq!(
            e,
            "argument 1 (i64) of f(i64) -> i64: expected an integer for i64, found \"x\""
        );
        let e = call(&["Point"], &["{}"]).unwrap_err();
        assert!(e.contains("--args-postcard-hex"), "{e}");
    }
}
