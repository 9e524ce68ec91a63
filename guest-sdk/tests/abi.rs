//! The guest side of the ABI, run natively: the generated call functions
//! and the signature records, checked against wask-proto.

use wask_guest::{STATUS_BAD_ARGS, STATUS_ERR, STATUS_OK};
use wask_proto::signature::{TaskSignature, encode_record, parse_section};

#[wask_guest::task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[wask_guest::task]
fn sum(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[wask_guest::task]
fn nothing() {}

#[wask_guest::task]
fn pair() -> (Vec<String>, std::collections::BTreeMap<String, Option<u8>>) {
    (vec!["a".into()], Default::default())
}

#[wask_guest::task]
fn checked(x: i64) -> Result<u32, String> {
    u32::try_from(x).map_err(|e| format!("{x}: {e}"))
}

#[wask_guest::task]
fn parse(s: String) -> std::io::Result<Option<i64>> {
    Ok(s.parse().ok())
}

#[allow(clippy::result_unit_err)]
pub mod nested {
    /// `Result` spelled with one argument, as `anyhow::Result<T>` is.
    pub type Result<T> = std::result::Result<T, std::fmt::Error>;

    #[wask_guest::task]
    pub fn r#loop(n: u8) -> Result<u8> {
        if n == 0 { Err(std::fmt::Error) } else { Ok(n) }
    }
}

fn ok<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, vec![STATUS_OK]).unwrap()
}

fn text(output: &[u8]) -> (u8, &str) {
    (output[0], std::str::from_utf8(&output[1..]).unwrap())
}

#[test]
fn calls_decode_arguments_and_encode_results() {
    assert_eq!(
        __wask_call_add(&postcard::to_allocvec(&(40i64, 2i64)).unwrap()),
        ok(&42i64)
    );
    // One argument: the 1-tuple is the bare value.
    assert_eq!(
        __wask_call_sum(&postcard::to_allocvec(&vec![1i64, 2, 3]).unwrap()),
        ok(&6i64)
    );
    assert_eq!(__wask_call_nothing(&[]), ok(&()));
    assert_eq!(__wask_call_pair(&[]), ok(&pair()));
    assert_eq!(
        __wask_call_checked(&postcard::to_allocvec(&7i64).unwrap()),
        ok(&7u32)
    );
    assert_eq!(
        __wask_call_parse(&postcard::to_allocvec("12").unwrap()),
        ok(&Some(12i64))
    );
    assert_eq!(nested::__wask_call_loop(&[3]), ok(&3u8));
}

#[test]
fn errors_carry_their_text() {
    let out = __wask_call_checked(&postcard::to_allocvec(&-1i64).unwrap());
    assert_eq!(
        text(&out),
        (
            STATUS_ERR,
            "-1: out of range integral type conversion attempted"
        )
    );
    assert_eq!(
        text(&nested::__wask_call_loop(&[0])),
        (STATUS_ERR, "an error occurred when formatting an argument")
    );
}

#[test]
fn bad_arguments_are_refused() {
    let out = __wask_call_add(&[1]);
    let (status, message) = text(&out);
    assert_eq!(status, STATUS_BAD_ARGS);
    assert!(
        message.starts_with("the arguments of task add(i64, i64) did not decode: "),
        "{message}"
    );
    // Trailing bytes mean the caller and the task disagree on the types.
    let out = __wask_call_add(&[2, 4, 6]);
    let (status, message) = text(&out);
    assert_eq!(status, STATUS_BAD_ARGS);
    assert!(
        message.ends_with("1 unexpected bytes after them"),
        "{message}"
    );
    assert_eq!(text(&__wask_call_nothing(&[0])).0, STATUS_BAD_ARGS);
}

#[test]
fn records_are_what_wask_proto_encodes() {
    let sig = |name: &str, params: &[&str], result: &str| TaskSignature {
        name: name.into(),
        params: params.iter().map(|p| p.to_string()).collect(),
        result: result.into(),
    };
    // The raw spelling is `quote!(#ty).to_string()`.
    assert_eq!(
        __WASK_TASK_ADD.as_slice(),
        encode_record(&sig("add", &["i64", "i64"], "i64"))
    );
    assert_eq!(
        __WASK_TASK_SUM.as_slice(),
        encode_record(&sig("sum", &["Vec < i64 >"], "i64"))
    );
    assert_eq!(
        __WASK_TASK_NOTHING.as_slice(),
        encode_record(&sig("nothing", &[], "()"))
    );

    let mut section = Vec::new();
    for record in [
        &__WASK_TASK_ADD[..],
        &__WASK_TASK_SUM[..],
        &__WASK_TASK_NOTHING[..],
        &__WASK_TASK_PAIR[..],
        &__WASK_TASK_CHECKED[..],
        &__WASK_TASK_PARSE[..],
        &nested::__WASK_TASK_LOOP[..],
    ] {
        section.extend_from_slice(record);
    }
    let listed: Vec<String> = parse_section(&section, 100)
        .unwrap()
        .iter()
        .map(|s| s.display())
        .collect();
    assert_eq!(
        listed,
        [
            "add(i64, i64) -> i64",
            "sum(Vec<i64>) -> i64",
            "nothing() -> ()",
            "pair() -> (Vec<String>,BTreeMap<String,Option<u8>>)",
            "checked(i64) -> u32",
            "parse(String) -> Option<i64>",
            "loop(u8) -> u8",
        ]
    );
}

#[test]
fn alloc_gives_a_writable_buffer() {
    let p = wask_guest::alloc(16);
    // SAFETY: alloc returned 16 writable bytes that are never freed.
    unsafe { p.write_bytes(7, 16) };
    assert!(!wask_guest::alloc(0).is_null());
}
