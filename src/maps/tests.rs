use super::*;

fn map(kind: MatchKind, text: &str) -> MapData {
    load::parse(text.as_bytes(), "t.map".into(), kind, String::new(), 0).unwrap()
}

fn get(m: &MapData, key: &str) -> Option<String> {
    let v = Value::Str(key.as_bytes().into());
    m.lookup_raw(&v)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn file_format() {
    let m = map(
        MatchKind::Str,
        "# hosts\n\nwww.example.com   be_www  \r\napi.example.com\tbe_api\nkey with value spaces\n",
    );
    assert_eq!(m.len(), 3);
    assert_eq!(get(&m, "www.example.com").as_deref(), Some("be_www"));
    assert_eq!(get(&m, "api.example.com").as_deref(), Some("be_api"));
    assert_eq!(get(&m, "key").as_deref(), Some("with value spaces"));
    assert_eq!(get(&m, "nope"), None);
}

#[test]
fn bad_lines_say_where() {
    let e = load::parse(
        b"10.0.0.0/8 a\nnot-an-ip b\n",
        "x.map".into(),
        MatchKind::Ip,
        String::new(),
        0,
    )
    .unwrap_err();
    assert!(e.starts_with("x.map:2: "), "{e}");
    let e = load::parse(
        b"1 a\n2:x b\n",
        "n.map".into(),
        MatchKind::Int,
        String::new(),
        0,
    )
    .unwrap_err();
    assert!(e.starts_with("n.map:2: "), "{e}");
    let e = load::parse(b"( a\n", "r.map".into(), MatchKind::Reg, String::new(), 0).unwrap_err();
    assert!(e.starts_with("r.map:1: invalid regular expression"), "{e}");
    let e = load::read(
        std::path::Path::new("/nonexistent/x.map"),
        MatchKind::Str,
        String::new(),
        0,
    )
    .unwrap_err();
    assert!(e.contains("cannot read map file /nonexistent/x.map"), "{e}");
}

#[test]
fn match_kinds() {
    let beg = map(MatchKind::Beg, "/api a\n/api/v2 b\n/ root\n");
    assert_eq!(
        get(&beg, "/api/v2/x").as_deref(),
        Some("b"),
        "longest prefix"
    );
    assert_eq!(get(&beg, "/apix").as_deref(), Some("a"));
    assert_eq!(get(&beg, "/z").as_deref(), Some("root"));
    let end = map(MatchKind::End, ".jpg img\n.example.com ex\n");
    assert_eq!(get(&end, "/a/b.jpg").as_deref(), Some("img"));
    assert_eq!(get(&end, "www.example.com").as_deref(), Some("ex"));
    assert_eq!(get(&end, "b.png"), None);
    let sub = map(MatchKind::Sub, "admin a\nlogin l\n");
    assert_eq!(
        get(&sub, "/x/login/admin").as_deref(),
        Some("a"),
        "first in file"
    );
    let dir = map(MatchKind::Dir, "api a\n/v1/users/ u\n");
    assert_eq!(get(&dir, "/v2/api/x").as_deref(), Some("a"));
    assert_eq!(get(&dir, "/v2/apis/x"), None);
    assert_eq!(get(&dir, "/v1/users/7").as_deref(), Some("u"));
    let dom = map(MatchKind::Dom, "example.com ex\n");
    assert_eq!(get(&dom, "www.example.com").as_deref(), Some("ex"));
    assert_eq!(get(&dom, "myexample.com"), None);
    let reg = map(MatchKind::Reg, "^/img/.*\\.png$ png\n^/img/ img\n");
    assert_eq!(get(&reg, "/img/a.png").as_deref(), Some("png"));
    assert_eq!(get(&reg, "/img/a.gif").as_deref(), Some("img"));
    let ip = map(
        MatchKind::Ip,
        "10.0.0.0/8 ten\n10.1.0.0/16 ten-one\n2001:db8::/32 doc\n192.168.1.1 host\n",
    );
    assert_eq!(
        get(&ip, "10.1.2.3").as_deref(),
        Some("ten-one"),
        "longest prefix"
    );
    assert_eq!(get(&ip, "10.2.2.3").as_deref(), Some("ten"));
    assert_eq!(get(&ip, "192.168.1.1").as_deref(), Some("host"));
    assert_eq!(get(&ip, "2001:db8::7").as_deref(), Some("doc"));
    assert_eq!(get(&ip, "::ffff:10.9.9.9").as_deref(), Some("ten"));
    assert_eq!(get(&ip, "11.0.0.1"), None);
    let int = map(MatchKind::Int, "200 ok\n500:599 err\n404 nf\n");
    assert_eq!(
        int.lookup_raw(&Value::Int(503)).map(|v| v.to_vec()),
        Some(b"err".to_vec())
    );
    assert_eq!(get(&int, "404").as_deref(), Some("nf"));
    assert_eq!(get(&int, "300"), None);
}

#[test]
fn runtime_changes_keep_the_index_right() {
    let mut m = map(MatchKind::Str, "a 1\nb 2\na 3\n");
    assert_eq!(get(&m, "a").as_deref(), Some("1"), "first of duplicates");
    m.add(b"c", b"4").unwrap();
    assert_eq!(get(&m, "c").as_deref(), Some("4"));
    assert_eq!(m.set(b"a", b"9"), 2);
    assert_eq!(get(&m, "a").as_deref(), Some("9"));
    assert_eq!(m.remove(Some(b"a"), None), 2);
    assert_eq!(get(&m, "a"), None);
    assert_eq!(get(&m, "b").as_deref(), Some("2"));
    let id = m.entries()[0].id;
    assert!(m.set_id(id, b"x"));
    assert_eq!(get(&m, "b").as_deref(), Some("x"));
    assert_eq!(m.remove(None, Some(id)), 1);
    assert_eq!(m.len(), 1);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(get(&m, "c"), None);
}

#[test]
fn per_core_copies_are_copy_on_write() {
    let shared = Arc::new(map(MatchKind::Str, "k v\n"));
    let r = MapRef {
        map: Arc::clone(&shared),
        output: ValType::Str,
    };
    let key = Value::Str(b"k"[..].into());
    assert_eq!(r.lookup(&key), Some(Value::Shared(b"v"[..].into())));
    core::change(&shared, |m| m.set(b"k", b"w"));
    assert_eq!(r.lookup(&key), Some(Value::Shared(b"w"[..].into())));
    // The loaded map (what another core sees until it applies the change)
    // is untouched.
    assert_eq!(get(&shared, "k").as_deref(), Some("v"));
    let typed = MapRef {
        map: Arc::new(map(MatchKind::Str, "n 42\n")),
        output: ValType::Int,
    };
    assert_eq!(
        typed.lookup(&Value::Str(b"n"[..].into())),
        Some(Value::Int(42))
    );
}

#[test]
fn a_large_map_loads_and_finds() {
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!("host{i}.example.com be{}\n", i % 10));
    }
    let m = map(MatchKind::Str, &text);
    assert_eq!(m.len(), 100_000);
    assert_eq!(get(&m, "host99999.example.com").as_deref(), Some("be9"));
}

/// An ACL's live pattern file answers as the inlined matcher of the same
/// patterns, for every method that is read live.
#[test]
fn live_acl_patterns_match_as_the_inlined_matcher() {
    use crate::rules::sample::Sample;
    use crate::rules::{Matcher, StrPatterns};
    let strs = |p: &[&str]| StrPatterns {
        patterns: p.iter().map(|s| s.as_bytes().into()).collect(),
        icase: false,
    };
    let live_case = |kind: MatchKind, p: &[&str], icase: bool| {
        let mut m = MapData::new("t.lst".into(), kind, String::new(), 0);
        m.acl = true;
        m.icase = icase;
        for pat in p {
            m.add(pat.as_bytes(), b"").unwrap();
        }
        Matcher::Live(Box::new(crate::rules::LivePatterns {
            files: vec![Arc::new(m)],
            fixed: None,
        }))
    };
    let live = |kind: MatchKind, p: &[&str]| live_case(kind, p, false);
    let pats = ["/admin", "/a", ".php", "img", "Ex.Com", "/v1/API/"];
    let samples = [
        "/admin",
        "/admin/x",
        "/a",
        "/b",
        "/x.php",
        "/x.phps",
        "/img/1",
        "",
        "/A",
        "/ADMIN/x",
        "www.ex.com",
        "WWW.EX.COM:80",
        "a?ex.com",
        "/v1/api/users",
        "/V1/API/USERS",
        "/v1/apis",
    ];
    let lower = |p: &[&str]| StrPatterns {
        patterns: p
            .iter()
            .map(|s| s.to_ascii_lowercase().into_bytes().into())
            .collect(),
        icase: true,
    };
    let regs = ["^/adm", "\\.php$"];
    let cases: Vec<(Matcher, Matcher)> = vec![
        (Matcher::Str(strs(&pats)), live(MatchKind::Str, &pats)),
        (Matcher::Beg(strs(&pats)), live(MatchKind::Beg, &pats)),
        (Matcher::End(strs(&pats)), live(MatchKind::End, &pats)),
        (Matcher::Sub(strs(&pats)), live(MatchKind::Sub, &pats)),
        (Matcher::Dir(strs(&pats)), live(MatchKind::Dir, &pats)),
        (Matcher::Dom(strs(&pats)), live(MatchKind::Dom, &pats)),
        (
            Matcher::Str(lower(&pats)),
            live_case(MatchKind::Str, &pats, true),
        ),
        (
            Matcher::Beg(lower(&pats)),
            live_case(MatchKind::Beg, &pats, true),
        ),
        (
            Matcher::End(lower(&pats)),
            live_case(MatchKind::End, &pats, true),
        ),
        (
            Matcher::Sub(lower(&pats)),
            live_case(MatchKind::Sub, &pats, true),
        ),
        (
            Matcher::Dir(lower(&pats)),
            live_case(MatchKind::Dir, &pats, true),
        ),
        (
            Matcher::Dom(lower(&pats)),
            live_case(MatchKind::Dom, &pats, true),
        ),
        (
            Matcher::Reg(
                regs.iter()
                    .map(|r| crate::rules::pattern::compile_regex(r, true).unwrap())
                    .collect(),
            ),
            live_case(MatchKind::Reg, &regs, true),
        ),
        (
            Matcher::Len(vec![
                crate::rules::IntRange { min: 2, max: 2 },
                crate::rules::IntRange { min: 6, max: 8 },
            ]),
            live(MatchKind::Len, &["2", "6:8"]),
        ),
        (
            Matcher::Reg(
                regs.iter()
                    .map(|r| crate::rules::pattern::compile_regex(r, false).unwrap())
                    .collect(),
            ),
            live(MatchKind::Reg, &regs),
        ),
    ];
    for (inline, file) in &cases {
        for s in samples {
            let sample = Sample::Str(s.as_bytes());
            assert_eq!(
                inline.matches(sample),
                file.matches(sample),
                "{inline:?} {s}"
            );
        }
    }
    // A sample longer than the stack buffer is lowercased too.
    let long = format!("/{}/ADMIN", "X".repeat(400));
    let file = live_case(MatchKind::Sub, &["/admin"], true);
    assert!(file.matches(Sample::Str(long.as_bytes())));
    let file = live_case(MatchKind::End, &["/admin"], true);
    assert!(file.matches(Sample::Str(long.as_bytes())));
    let ints = ["10", "20:30", ":-5"];
    let inline = Matcher::Int(vec![
        crate::rules::IntRange { min: 10, max: 10 },
        crate::rules::IntRange { min: 20, max: 30 },
        crate::rules::IntRange {
            min: i64::MIN,
            max: -5,
        },
    ]);
    let file = live(MatchKind::Int, &ints);
    for v in [10, 11, 20, 25, 30, 31, -5, -4, 0] {
        assert_eq!(
            inline.matches(Sample::Int(v)),
            file.matches(Sample::Int(v)),
            "{v}"
        );
        let text = v.to_string();
        let sample = Sample::Str(text.as_bytes());
        assert_eq!(
            inline.matches(sample),
            file.matches(sample),
            "{v} as a string"
        );
    }
    let nets = ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"];
    let inline = Matcher::Ip(nets.iter().map(|n| n.parse().unwrap()).collect());
    let file = live(MatchKind::Ip, &nets);
    for ip in [
        "10.1.2.3",
        "11.0.0.1",
        "192.168.1.1",
        "192.168.1.2",
        "2001:db8::1",
        "::1",
    ] {
        let sample = Sample::Ip(ip.parse().unwrap());
        assert_eq!(inline.matches(sample), file.matches(sample), "{ip}");
        let sample = Sample::Str(ip.as_bytes());
        assert_eq!(
            inline.matches(sample),
            file.matches(sample),
            "{ip} as a string"
        );
    }
}

/// `prepare`, `add @<ver>`, `clear @<ver>`, `commit`: a prepared version
/// is not matched until its commit, which drops the older versions and
/// keeps the later ones.
#[test]
fn versions_are_matched_from_their_commit() {
    use crate::rules::sample::Sample;
    let mut m = map(MatchKind::Str, "a x\n");
    let has = |m: &MapData, k: &str| m.matches_sample(Sample::Str(k.as_bytes()));
    let add = |ver: u32, k: &str| MapChange::AddAt {
        ver,
        key: k.as_bytes().into(),
        value: b"v".to_vec().into(),
    };
    m.apply(&MapChange::Prepare(1));
    m.apply(&MapChange::Prepare(2));
    m.apply(&add(1, "b"));
    m.apply(&add(2, "c"));
    m.apply(&add(2, "d"));
    assert!(has(&m, "a") && !has(&m, "b") && !has(&m, "c"));
    assert_eq!(m.entries_at(1).len(), 1);
    assert_eq!(m.entries_at(2).len(), 2);
    m.apply(&MapChange::ClearAt(2));
    m.apply(&add(2, "c"));
    m.apply(&MapChange::Commit(1));
    assert!(!has(&m, "a") && has(&m, "b") && !has(&m, "c"));
    assert_eq!((m.curr_ver, m.next_ver), (1, 2));
    // The current version changes directly; the later one was kept.
    m.apply(&add(1, "e"));
    assert!(has(&m, "e"));
    assert_eq!(m.entries_at(2).len(), 1);
    m.apply(&MapChange::Commit(2));
    assert!(has(&m, "c") && !has(&m, "b") && !has(&m, "e"));
    assert_eq!(m.len(), 1);
}

#[test]
fn the_registry_notes_each_way_a_map_is_read_once_in_first_use_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.map"), "10.0.0.0/8 1.2.3.4\n").unwrap();
    let reg = load::MapRegistry::default();
    let get = |kind, output| {
        reg.get_or_load(dir.path(), "m.map", (kind, output), "")
            .unwrap()
    };
    let ip_ip = get(MatchKind::Ip, ValType::Ip);
    let str_str = get(MatchKind::Str, ValType::Str);
    let ip_str = get(MatchKind::Ip, ValType::Str);
    get(MatchKind::Ip, ValType::Ip);
    // One map per match kind, whatever the value type.
    assert!(Arc::ptr_eq(&ip_ip, &ip_str));
    assert!(!Arc::ptr_eq(&ip_ip, &str_str));
    let uses = reg.map_uses();
    assert_eq!(
        uses,
        [
            MapUse {
                map: 0,
                output: ValType::Ip
            },
            MapUse {
                map: 1,
                output: ValType::Str
            },
            MapUse {
                map: 0,
                output: ValType::Str
            },
        ]
    );
    // A matching entry through the converters' lookup.
    let e = ip_ip
        .matching_entry_for(&Value::Str(b"10.9.8.7".as_slice().into()))
        .unwrap();
    assert_eq!(&*e.key, b"10.0.0.0/8");
    assert!(ip_ip
        .matching_entry_for(&Value::Str(b"11.0.0.1".as_slice().into()))
        .is_none());
}
