//! The codec against postcard itself: every supported type encodes to the
//! bytes `postcard::to_allocvec` gives for the Rust value, and decodes back.

use super::*;
use serde::Serialize;
use serde_json::json;

fn ty(name: &str) -> Type {
    Type::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

fn enc(name: &str, value: Value) -> std::result::Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode(&ty(name), &value, &mut out).map(|()| out)
}

fn dec(name: &str, bytes: &[u8]) -> std::result::Result<Value, CodecError> {
    decode(&ty(name), bytes)
}

/// The type named by `std::any::type_name::<T>()`, encoded from `json`,
/// gives postcard's bytes for `value`, and those bytes decode to `json`.
#[track_caller]
fn check<T: Serialize>(value: T, json: Value) {
    let name = std::any::type_name::<T>();
    let expected = postcard::to_allocvec(&value).unwrap();
    assert_eq!(
        enc(name, json.clone()).unwrap(),
        expected,
        "encoding {json} as {name}"
    );
    assert_eq!(dec(name, &expected).unwrap(), json, "decoding {name}");
}

#[test]
fn integers() {
    for v in [0u8, 1, 127, 128, 255] {
        check(v, json!(v));
    }
    for v in [i8::MIN, -1, 0, 1, i8::MAX] {
        check(v, json!(v));
    }
    for v in [0u16, 127, 128, 16383, 16384, u16::MAX] {
        check(v, json!(v));
    }
    for v in [i16::MIN, -65, -64, -1, 0, 63, 64, i16::MAX] {
        check(v, json!(v));
    }
    for v in [0u32, 300, u32::MAX] {
        check(v, json!(v));
    }
    for v in [i32::MIN, -300, 0, 300, i32::MAX] {
        check(v, json!(v));
    }
    for v in [0u64, 1 << 35, u64::MAX] {
        check(v, json!(v));
    }
    for v in [i64::MIN, -1, 10, i64::MAX] {
        check(v, json!(v));
    }
    for v in [0usize, 1000, u32::MAX as usize] {
        check(v, json!(v));
    }
    for v in [i32::MIN as isize, -1, 0, i32::MAX as isize] {
        check(v, json!(v));
    }
}

#[test]
fn wide_integers_past_64_bits_are_strings() {
    check(0u128, json!(0));
    check(u64::MAX as u128, json!(u64::MAX));
    check(u64::MAX as u128 + 1, json!("18446744073709551616"));
    check(u128::MAX, json!(u128::MAX.to_string()));
    check(-5i128, json!(-5));
    check(i64::MIN as i128, json!(i64::MIN));
    check(i64::MIN as i128 - 1, json!("-9223372036854775809"));
    check(i128::MIN, json!(i128::MIN.to_string()));
    check(i128::MAX, json!(i128::MAX.to_string()));
    // Small values may be written as strings too.
    assert_eq!(
        enc("u128", json!("7")).unwrap(),
        postcard::to_allocvec(&7u128).unwrap()
    );
    assert_eq!(
        enc("i128", json!("-7")).unwrap(),
        postcard::to_allocvec(&-7i128).unwrap()
    );
}

#[test]
fn floats() {
    for v in [0.0f32, 1.5, -0.25, f32::MAX, f32::MIN_POSITIVE] {
        check(v, json!(v.to_string().parse::<f64>().unwrap()));
    }
    // f32's shortest decimal, not the f64 widening 0.10000000149011612.
    check(0.1f32, json!(0.1));
    for v in [0.0f64, 0.1, -1e300, f64::MAX, f64::EPSILON] {
        check(v, json!(v));
    }
    check(f64::INFINITY, json!("inf"));
    check(f64::NEG_INFINITY, json!("-inf"));
    check(f32::INFINITY, json!("inf"));
    let nan = postcard::to_allocvec(&f64::NAN).unwrap();
    assert_eq!(enc("f64", json!("NaN")).unwrap(), nan);
    assert_eq!(dec("f64", &nan).unwrap(), json!("NaN"));
    // Integers are fine where a float is expected.
    assert_eq!(
        enc("f64", json!(2)).unwrap(),
        postcard::to_allocvec(&2.0f64).unwrap()
    );
}

#[test]
fn bool_char_string_unit() {
    check(true, json!(true));
    check(false, json!(false));
    for c in ['a', 'é', '€', '😀'] {
        check(c, json!(c.to_string()));
    }
    check(String::new(), json!(""));
    check("héllo wörld".to_string(), json!("héllo wörld"));
    check("x".repeat(200), json!("x".repeat(200))); // two-byte length
    check((), json!(null));
}

#[test]
fn options_vecs_tuples_arrays() {
    check(None::<u8>, json!(null));
    check(Some(5u8), json!(5));
    check(Some(String::from("a")), json!("a"));
    check(Vec::<i64>::new(), json!([]));
    check(vec![1i64, -2, 300], json!([1, -2, 300]));
    check(
        (0..200).collect::<Vec<u32>>(),
        json!((0..200).collect::<Vec<u32>>()),
    );
    check(vec!["a".to_string(), "b".to_string()], json!(["a", "b"]));
    check(vec![1.5f64, 2.5], json!([1.5, 2.5]));
    check((7i64, "s".to_string()), json!([7, "s"]));
    check((true,), json!([true]));
    check(
        (1u8, -1i16, 'c', (), None::<bool>),
        json!([1, -1, "c", null, null]),
    );
    check([1u8, 2, 3, 4], json!([1, 2, 3, 4]));
    check(["x".to_string(), "y".to_string()], json!(["x", "y"]));
    check([0u64; 0], json!([]));
    check(vec![(), ()], json!([null, null]));
}

#[test]
fn nested_types() {
    check(
        vec![(Some([1i8, -2]), "p".to_string()), (None, String::new())],
        json!([[[1, -2], "p"], [null, ""]]),
    );
    check(
        Some(vec![Some(1u16), None, Some(65535)]),
        json!([1, null, 65535]),
    );
    check(
        vec![vec![1u128, u128::MAX], vec![]],
        json!([[1, u128::MAX.to_string()], []]),
    );
    check(
        ((1u8, (2u16,)), [(3i32, 'z'); 2]),
        json!([[1, [2]], [[3, "z"], [3, "z"]]]),
    );
    check(Some(Some(3u8)), json!(3));
}

#[test]
fn a_call_is_its_parameters_back_to_back() {
    // postcard is concatenative: (a, b) encodes as a then b.
    let mut out = Vec::new();
    encode(&ty("i64"), &json!(2), &mut out).unwrap();
    encode(&ty("Vec<String>"), &json!(["q"]), &mut out).unwrap();
    assert_eq!(out, postcard::to_allocvec(&(2i64, vec!["q"])).unwrap());
}

fn kind(r: std::result::Result<impl fmt::Debug, CodecError>) -> ErrorKind {
    r.expect_err("should fail").kind
}

#[test]
fn encode_errors() {
    let e = enc("u8", json!(300)).unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::OutOfRange { ty, value, .. } if ty == "u8" && value == "300")
    );
    assert_eq!(e.to_string(), "300 does not fit in u8 (0..=255)");
    assert!(matches!(
        kind(enc("u32", json!(-1))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("i8", json!(128))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("i8", json!(-129))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("usize", json!(1u64 << 32))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("isize", json!(-(1i64 << 31) - 1))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("u64", json!(-1))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("u128", json!("-1"))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("i128", json!(u128::MAX.to_string()))),
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        kind(enc("f32", json!(1e40))),
        ErrorKind::OutOfRange { .. }
    ));

    let e = enc("i64", json!("x")).unwrap_err();
    assert_eq!(e.to_string(), "expected an integer for i64, found \"x\"");
    assert!(matches!(
        kind(enc("i64", json!(1.5))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("i64", json!(null))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("i64", json!(1e19))),
        ErrorKind::OutOfRange { .. }
    ));
    let e = enc("u128", json!(1e30)).unwrap_err();
    assert!(e.to_string().contains("decimal string"), "{e}");
    assert!(matches!(
        kind(enc("i128", json!("12x"))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("f64", json!("fast"))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("bool", json!(1))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("char", json!("ab"))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("char", json!(""))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("String", json!(5))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("()", json!(0))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("Vec<i64>", json!({"a": 1}))),
        ErrorKind::Expected { .. }
    ));
    assert!(matches!(
        kind(enc("(i64,String)", json!([1]))),
        ErrorKind::WrongLength {
            expected: 2,
            found: 1,
            ..
        }
    ));
    assert!(matches!(
        kind(enc("[u8;4]", json!([1, 2, 3, 4, 5]))),
        ErrorKind::WrongLength {
            expected: 4,
            found: 5,
            ..
        }
    ));
    assert!(matches!(
        kind(enc("(u8,)", json!(1))),
        ErrorKind::Expected { .. }
    ));

    // The path leads to the bad item.
    let e = enc("Vec<i64>", json!([1, "x"])).unwrap_err();
    assert_eq!(e.path, vec![1]);
    assert_eq!(
        e.to_string(),
        "at [1]: expected an integer for i64, found \"x\""
    );
    let e = enc(
        "Vec<(u8,Option<[u8;2]>)>",
        json!([[1, null], [2, [3, 256]]]),
    )
    .unwrap_err();
    assert_eq!(e.path, vec![1, 1, 1]);
    // Long values are shortened in messages.
    let e = enc("u8", json!(["y".repeat(100)])).unwrap_err();
    assert!(e.to_string().len() < 100, "{e}");
}

#[test]
fn decode_errors() {
    let tail = dec("i64", &[0x14, 0]).unwrap_err();
    assert_eq!(
        tail.kind,
        ErrorKind::TrailingBytes {
            ty: "i64".into(),
            extra: 1
        }
    );
    assert!(matches!(kind(dec("i64", &[])), ErrorKind::Truncated { .. }));
    assert!(matches!(
        kind(dec("i64", &[0x80])),
        ErrorKind::Truncated { .. }
    ));
    assert!(matches!(
        kind(dec("f64", &[0; 7])),
        ErrorKind::Truncated { .. }
    ));
    assert!(matches!(
        kind(dec("String", &[3, b'a'])),
        ErrorKind::Truncated { .. }
    ));
    assert!(matches!(
        kind(dec("()", &[0])),
        ErrorKind::TrailingBytes { .. }
    ));
    assert!(matches!(kind(dec("bool", &[2])), ErrorKind::Invalid { .. }));
    assert!(matches!(
        kind(dec("Option<u8>", &[2, 0])),
        ErrorKind::Invalid { .. }
    ));
    assert!(matches!(
        kind(dec("String", &[2, 0xc3, 0x28])),
        ErrorKind::Invalid { .. }
    ));
    assert!(matches!(
        kind(dec("char", &[2, b'a', b'b'])),
        ErrorKind::Invalid { .. }
    ));
    assert!(matches!(kind(dec("char", &[0])), ErrorKind::Invalid { .. }));
    // Varints: too long, or too large for the type.
    assert!(matches!(
        kind(dec("u64", &[0x80; 11])),
        ErrorKind::Invalid { .. }
    ));
    assert!(matches!(
        kind(dec("u16", &[0xff, 0xff, 0x7f])),
        ErrorKind::Invalid { .. }
    ));
    assert_eq!(
        dec("u32", &[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap(),
        json!(u32::MAX)
    );
    assert!(matches!(
        kind(dec("u32", &[0xff, 0xff, 0xff, 0xff, 0x10])),
        ErrorKind::Invalid { .. }
    ));
    assert!(matches!(
        kind(dec("i32", &[0xff, 0xff, 0xff, 0xff, 0x1f])),
        ErrorKind::Invalid { .. }
    ));
    assert!(matches!(
        kind(dec("usize", &postcard::to_allocvec(&(1u64 << 32)).unwrap())),
        ErrorKind::Invalid { .. }
    ));
    let mut past_u128 = vec![0xff; 18];
    past_u128.push(0x04);
    assert!(matches!(
        kind(dec("u128", &past_u128)),
        ErrorKind::Invalid { .. }
    ));
    // A length larger than the bytes left, even for items of no bytes.
    assert!(matches!(
        kind(dec("Vec<u8>", &[5, 1, 2])),
        ErrorKind::Truncated { .. }
    ));
    let huge = postcard::to_allocvec(&(u64::MAX)).unwrap();
    assert!(matches!(
        kind(dec("Vec<()>", &huge)),
        ErrorKind::Truncated { .. }
    ));
    // The path leads to the bad item.
    let e = dec("Vec<bool>", &[3, 1, 0, 9]).unwrap_err();
    assert_eq!(e.path, vec![2]);
    assert_eq!(
        e.to_string(),
        "at [2]: invalid bool: byte 9 is neither 0 nor 1"
    );
}
