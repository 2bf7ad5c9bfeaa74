use super::*;
use crate::rules::sample::ConnFacts;

fn conn() -> ConnFacts {
    ConnFacts {
        src: "10.1.2.3:5555".parse().unwrap(),
        dst: "127.0.0.1:80".parse().unwrap(),
        tls: None,
        pp: None,
        stick: Default::default(),
        vars: Default::default(),
        live: Default::default(),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    }
}

/// Runs converter `name` with `args` on `input`.
fn run(name: &str, args: Vec<Arg>, input: Value<'static>) -> Option<Value<'static>> {
    let def = find(name).unwrap_or_else(|| panic!("no converter {name}"));
    let conv = Conv {
        def,
        args,
        output: def.output,
    };
    let c = conn();
    let facts = Facts::content(&c, None);
    conv.apply(input, &facts).map(|v| match v {
        Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        Value::Bin(s) => Value::Bin(Cow::Owned(s.into_owned())),
        Value::Shared(s) => Value::Shared(s),
        Value::Int(i) => Value::Int(i),
        Value::Ip(i) => Value::Ip(i),
        Value::Bool(b) => Value::Bool(b),
    })
}

fn s(v: &str) -> Value<'static> {
    Value::Str(Cow::Owned(v.as_bytes().to_vec()))
}

fn a(v: &str) -> Arg {
    Arg::Str(v.as_bytes().into())
}

fn text_of(v: Option<Value<'_>>) -> String {
    let mut out = Vec::new();
    v.expect("a sample").write_to(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn casts_follow_haproxy() {
    assert_eq!(cast(s("42abc"), ValType::Int), Some(Value::Int(42)));
    assert_eq!(cast(s("-7"), ValType::Int), Some(Value::Int(-7)));
    assert_eq!(cast(s("abc"), ValType::Int), None);
    assert_eq!(cast(s("0"), ValType::Bool), Some(Value::Bool(false)));
    assert_eq!(
        cast(s("10.0.0.1"), ValType::Ip),
        Some(Value::Ip("10.0.0.1".parse().unwrap()))
    );
    assert_eq!(cast(s("nope"), ValType::Ip), None);
    assert_eq!(text_of(cast(Value::Int(5), ValType::Str)), "5");
    assert_eq!(text_of(cast(Value::Bool(true), ValType::Str)), "1");
    assert_eq!(
        cast(Value::Int(0x0a000001), ValType::Ip),
        Some(Value::Ip("10.0.0.1".parse().unwrap()))
    );
    assert_eq!(
        cast(Value::Ip("10.0.0.1".parse().unwrap()), ValType::Int),
        Some(Value::Int(0x0a000001))
    );
    assert_eq!(cast(Value::Ip("::1".parse().unwrap()), ValType::Int), None);
}

#[test]
fn string_converters() {
    assert_eq!(text_of(run("lower", vec![], s("WwW.Ex"))), "www.ex");
    assert_eq!(text_of(run("upper", vec![], s("abc"))), "ABC");
    assert_eq!(text_of(run("base64", vec![], s("hello"))), "aGVsbG8=");
    assert_eq!(text_of(run("b64dec", vec![], s("aGVsbG8="))), "hello");
    assert_eq!(run("b64dec", vec![], s("!!")), None);
    assert_eq!(text_of(run("hex", vec![], s("\x01A"))), "0141");
    assert_eq!(
        text_of(run("url_dec", vec![], s("/a%20b+c?x=1+2"))),
        "/a b+c?x=1 2"
    );
    assert_eq!(text_of(run("url_dec", vec![Arg::Int(1)], s("a+b"))), "a b");
    assert_eq!(run("url_dec", vec![], s("%zz")), None);
    assert_eq!(run("length", vec![], s("abcd")), Some(Value::Int(4)));
    assert_eq!(
        text_of(run("concat", vec![a("<"), a(""), a(">")], s("x"))),
        "<x>"
    );
    assert_eq!(
        text_of(run("json", vec![], s("a\"b\\c\n\u{e9}"))),
        "a\\\"b\\\\c\\n\\u00c3\\u00a9"
    );
    assert_eq!(
        text_of(run("json", vec![a("utf8")], s("\u{e9}\""))),
        "\u{e9}\\\""
    );
    assert_eq!(
        run("json", vec![a("utf8")], Value::Str(Cow::Owned(vec![0xff]))),
        None
    );
}

#[test]
fn fields_words_bytes_regsub() {
    let f = |i: i64, c: Option<i64>, input: &str| {
        let mut args = vec![Arg::Int(i), a("./")];
        args.extend(c.map(Arg::Int));
        run("field", args, s(input)).map(|v| text_of(Some(v)))
    };
    assert_eq!(f(2, None, "a.b.c.d").as_deref(), Some("b"));
    assert_eq!(f(-1, None, "a.b.c.d").as_deref(), Some("d"));
    assert_eq!(f(2, Some(2), "a.b.c.d").as_deref(), Some("b.c"));
    assert_eq!(f(-2, Some(2), "a.b.c.d").as_deref(), Some("b.c"));
    assert_eq!(f(2, Some(0), "a.b/c.d").as_deref(), Some("b/c.d"));
    assert_eq!(f(5, None, "a.b"), None);
    assert_eq!(f(2, None, "a..b").as_deref(), Some(""));
    let w = run("word", vec![Arg::Int(2), a("/")], s("//a//b/"));
    assert_eq!(text_of(w), "b");
    let b = run("bytes", vec![Arg::Int(1), Arg::Int(2)], s("abcd"));
    assert_eq!(text_of(b), "bc");
    assert_eq!(text_of(run("bytes", vec![Arg::Int(2)], s("abcd"))), "cd");
    let re = |p: &str, i: bool| Arg::Regex(crate::rules::pattern::compile_regex(p, i).unwrap());
    assert_eq!(
        text_of(run(
            "regsub",
            vec![re("^/api(/.*)$", false), a("\\1")],
            s("/api/users")
        )),
        "/users"
    );
    assert_eq!(
        text_of(run(
            "regsub",
            vec![re("a", false), a("o"), a("g")],
            s("banana")
        )),
        "bonono"
    );
    assert_eq!(
        text_of(run("regsub", vec![re("a", false), a("o")], s("banana"))),
        "bonana"
    );
    assert_eq!(
        text_of(run(
            "regsub",
            vec![re("A", true), a("o"), a("ig")],
            s("banana")
        )),
        "bonono"
    );
    assert_eq!(
        text_of(run("regsub", vec![re("z", false), a("o")], s("ab"))),
        "ab"
    );
}

#[test]
fn hashes_match_known_values() {
    // CRC-32 (IEEE) of "123456789" is 0xCBF43926.
    assert_eq!(
        run("crc32", vec![], s("123456789")),
        Some(Value::Int(0xCBF4_3926))
    );
    assert_eq!(djb2(b""), 5381);
    assert_eq!(djb2(b"a"), 5381 * 33 + 97);
    assert_eq!(sdbm(b"a"), 97);
    assert_eq!(
        sdbm(b"ab"),
        98u32
            .wrapping_add(97 << 6)
            .wrapping_add(97 << 16)
            .wrapping_sub(97)
    );
    assert_ne!(wt6(b"abc"), wt6(b"abd"));
    assert_eq!(
        run("djb2", vec![Arg::Int(1)], s("a")),
        Some(Value::Int(i64::from(avalanche(5381 * 33 + 97))))
    );
    assert_eq!(
        run("xxh3", vec![], s("")),
        Some(Value::Int(xxhash_rust::xxh3::xxh3_64(b"") as i64))
    );
    let sha1 = run("sha1", vec![], s("abc")).unwrap();
    assert_eq!(
        text_of(run("hex", vec![], sha1)),
        "A9993E364706816ABA3E25717850C26C9CD0D89D"
    );
    let sha256 = run("sha2", vec![], s("abc")).unwrap();
    assert!(text_of(run("hex", vec![], sha256)).starts_with("BA7816BF"));
    let sha224 = run("sha2", vec![Arg::Int(224)], s("abc")).unwrap();
    assert!(text_of(run("hex", vec![], sha224)).starts_with("23097D22"));
}

#[test]
fn arithmetic_logic_and_addresses() {
    let i = |name: &str, arg: i64, v: i64| run(name, vec![Arg::Int(arg)], Value::Int(v));
    assert_eq!(i("add", 3, 4), Some(Value::Int(7)));
    assert_eq!(i("sub", 3, 4), Some(Value::Int(1)));
    assert_eq!(i("mul", 3, 4), Some(Value::Int(12)));
    assert_eq!(i("div", 3, 10), Some(Value::Int(3)));
    assert_eq!(i("div", 0, 10), Some(Value::Int(i64::MAX)));
    assert_eq!(i("mod", 3, 10), Some(Value::Int(1)));
    assert_eq!(i("mod", 0, 10), Some(Value::Int(0)));
    assert_eq!(i("and", 6, 3), Some(Value::Int(2)));
    assert_eq!(i("or", 4, 3), Some(Value::Int(7)));
    // A string input is cast to an integer first.
    assert_eq!(run("add", vec![Arg::Int(1)], s("41")), Some(Value::Int(42)));
    assert_eq!(run("bool", vec![], Value::Int(3)), Some(Value::Bool(true)));
    assert_eq!(run("not", vec![], Value::Int(3)), Some(Value::Bool(false)));
    assert_eq!(
        text_of(run("iif", vec![a("y"), a("n")], Value::Bool(false))),
        "n"
    );
    assert_eq!(text_of(run("iif", vec![a("y"), a("n")], s("1"))), "y");
    let ip = |v: &str| Value::Ip(v.parse().unwrap());
    assert_eq!(
        run("ipmask", vec![a("24")], ip("10.1.2.3")),
        Some(ip("10.1.2.0"))
    );
    assert_eq!(
        run("ipmask", vec![a("255.255.0.0")], ip("10.1.2.3")),
        Some(ip("10.1.0.0"))
    );
    assert_eq!(
        run("ipmask", vec![a("24"), Arg::Int(32)], ip("2001:db8:1::1")),
        Some(ip("2001:db8::"))
    );
    assert_eq!(run("ipmask", vec![a("24")], ip("2001:db8::1")), None);
}

#[test]
fn dates() {
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        text_of(run("http_date", vec![Arg::Int(3600)], Value::Int(0))),
        "Thu, 01 Jan 1970 01:00:00 GMT"
    );
    assert_eq!(
        text_of(run(
            "http_date",
            vec![Arg::Int(0), a("ms")],
            Value::Int(1_000)
        )),
        "Thu, 01 Jan 1970 00:00:01 GMT"
    );
    assert_eq!(
        text_of(run(
            "utime",
            vec![a("%Y-%m-%d %H:%M:%S")],
            Value::Int(784_111_777)
        )),
        "1994-11-06 08:49:37"
    );
    assert_eq!(
        text_of(run("utime", vec![a("%H"), Arg::Int(3600)], Value::Int(0))),
        "01"
    );
    assert!(run("ltime", vec![a("%Y")], Value::Int(0)).is_some());
}

#[test]
fn unchanged_strings_stay_borrowed() {
    let input: &[u8] = b"www.example.com";
    let c = conn();
    let facts = Facts::content(&c, None);
    let lower = Conv {
        def: find("lower").unwrap(),
        args: vec![],
        output: ValType::Str,
    };
    let field = Conv {
        def: find("field").unwrap(),
        args: vec![Arg::Int(2), a(".")],
        output: ValType::Str,
    };
    let chain = [lower, field];
    let out = run_chain(&chain, Value::Str(Cow::Borrowed(input)), &facts);
    assert!(matches!(out, Some(Value::Str(Cow::Borrowed(b"example")))));
}

#[test]
fn every_converter_has_a_description_and_known_name() {
    let mut seen = std::collections::HashSet::new();
    for c in CONVERTERS {
        assert!(seen.insert(c.name), "{} twice", c.name);
        assert!(!c.description.is_empty());
    }
    assert!(map_variant("map_beg_int").is_some());
    assert!(map_variant("map_ip").is_some());
    assert!(map_variant("map_foo").is_none());
    assert!(map_variant("mapx").is_none());
}

#[test]
fn docs_list_every_converter() {
    let docs = include_str!("../../../docs/configuration.md");
    for c in CONVERTERS {
        let row = format!(
            "| `{}` | {} | {} |",
            c.usage(),
            c.input.name(),
            c.output.name()
        );
        assert!(docs.contains(&row), "docs/configuration.md lacks {row}");
    }
    // And the other way: every converter the docs table lists is one.
    let start = docs
        .find("| Converter | Input | Output | What it gives |")
        .expect("docs/configuration.md has the converter table");
    for row in docs[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
    {
        let usage = row.split('|').nth(1).unwrap_or("").trim().trim_matches('`');
        let name = usage.split('(').next().unwrap_or("");
        assert!(
            CONVERTERS.iter().any(|c| c.name == name),
            "docs/configuration.md documents converter `{name}`, which is not in the table"
        );
    }
}
