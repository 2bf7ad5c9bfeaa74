//! Conversions of small files, read back with toml_edit and, where the
//! result must run, loaded as `percore --check` loads it.

use super::{convert, Converted, Input};
use toml_edit::{DocumentMut, Item};

fn run(cfg: &str) -> Converted {
    run_env(cfg, &[])
}

fn run_env(cfg: &str, env: &[(&str, &str)]) -> Converted {
    let lookup = |n: &str| {
        env.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.to_string())
    };
    convert(
        &[Input {
            name: "haproxy.cfg".into(),
            bytes: cfg.as_bytes().to_vec(),
        }],
        &lookup,
    )
}

fn doc(c: &Converted) -> DocumentMut {
    c.toml.parse().unwrap_or_else(|e| panic!("{e}\n{}", c.toml))
}

/// The table of the n-th `[[kind]]`.
fn nth<'a>(d: &'a DocumentMut, kind: &str, n: usize) -> &'a toml_edit::Table {
    d[kind]
        .as_array_of_tables()
        .unwrap_or_else(|| panic!("no [[{kind}]]"))
        .get(n)
        .unwrap_or_else(|| panic!("no [[{kind}]] #{n}"))
}

/// A value as TOML text, without the comments around it.
fn text(item: &Item) -> String {
    fn bare(v: &toml_edit::Value) -> String {
        match v {
            toml_edit::Value::Array(a) => {
                let items: Vec<String> = a.iter().map(bare).collect();
                format!("[{}]", items.join(", "))
            }
            v => {
                let mut v = v.clone();
                v.decor_mut().clear();
                v.to_string()
            }
        }
    }
    match item {
        Item::Value(v) => bare(v),
        other => other.to_string().trim().to_string(),
    }
}

fn check_loads(c: &Converted) {
    if let Err(e) = crate::config::load_str(&c.toml, std::path::Path::new("percore.toml")) {
        panic!("{e}\n{}", c.toml);
    }
}

const TIMEOUTS: &str = "    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n";

#[test]
fn each_proxy_takes_the_defaults_in_force_where_it_is_declared() {
    let cfg = format!(
        "defaults web\n    mode http\n{TIMEOUTS}    option forwardfor\n\
         frontend f1\n    bind 127.0.0.1:8001\n    default_backend b1\n\
         backend b1\n    server s 127.0.0.1:9001\n\
         defaults tcp\n    mode tcp\n{TIMEOUTS}\
         listen l1\n    bind 127.0.0.1:8002\n    server s 127.0.0.1:9002\n\
         backend b2 from web\n    server s 127.0.0.1:9003\n\
         defaults\n    timeout client 1s\n\
         frontend f2\n    bind 127.0.0.1:8003\n    default_backend l1\n"
    );
    let c = run(&cfg);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let f1 = nth(&d, "frontend", 0);
    assert_eq!(text(&f1["mode"]), "\"http\"");
    assert_eq!(text(&f1["forwardfor"]), "true");
    // Frontends get the client side, backends the server side.
    assert!(f1["timeout"].get("connect").is_none());
    assert_eq!(text(&nth(&d, "backend", 0)["timeout"]["connect"]), "\"5s\"");
    // The listen: frontend + backend named alike, defaults "tcp".
    let l1 = nth(&d, "frontend", 1);
    assert_eq!(text(&l1["mode"]), "\"tcp\"");
    assert_eq!(text(&l1["default_backend"]), "\"l1\"");
    assert!(l1.get("forwardfor").is_none());
    assert_eq!(text(&nth(&d, "backend", 1)["name"]), "\"l1\"");
    // `from web` skips the defaults in force.
    let b2 = nth(&d, "backend", 2);
    assert_eq!(text(&b2["mode"]), "\"http\"");
    // A defaults section without `from` starts from nothing.
    let f2 = nth(&d, "frontend", 2);
    assert!(f2.get("mode").is_none(), "{}", c.toml);
    assert_eq!(text(&f2["timeout"]["client"]), "\"1s\"");
    // Inherited values name their defaults line.
    assert!(c
        .toml
        .contains("mode = \"http\"  # haproxy.cfg:2: mode http (from defaults web)"));
    check_loads(&c);
}

#[test]
fn an_unknown_from_is_reported() {
    let c = run("backend b from nowhere\n    server s 127.0.0.1:9001\n");
    assert_eq!(c.problems.len(), 1);
    assert!(c.problems[0].why.contains("nowhere"));
}

#[test]
fn default_server_lines_apply_to_later_servers_only() {
    let cfg = format!(
        "defaults\n{TIMEOUTS}    default-server inter 3s\n\
         backend b\n    server s1 127.0.0.1:9001\n    default-server check rise 5\n\
         server s2 127.0.0.1:9002 no-check weight 3\n    server s3 [::1]:9003\n\
         server s4 ::1:9004 addr 127.0.0.2 port 9999 sni str(api.internal) ssl verify none\n"
    );
    let c = run(&cfg);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let servers = nth(&d, "backend", 0)["servers"].as_array().unwrap();
    let s: Vec<String> = servers.iter().map(|v| v.to_string()).collect();
    assert!(
        s[0].contains("inter = \"3s\"") && !s[0].contains("check"),
        "{}",
        s[0]
    );
    assert!(s[1].contains("rise = 5") && !s[1].contains("check") && s[1].contains("weight = 3"));
    assert!(s[2].contains("check = true") && s[2].contains("\"[::1]:9003\""));
    assert!(s[3].contains("\"[::1]:9004\"") && s[3].contains("check-addr = \"127.0.0.2\""));
    assert!(s[3].contains("sni = \"api.internal\"") && s[3].contains("verify = \"none\""));
}

#[test]
fn old_httpchk_forms_become_an_http_check_send() {
    let c = run(
        "backend b\n    option httpchk HEAD /ping HTTP/1.1\\r\\nHost:\\ health.example\n\
         http-check expect status 200-399\n    server s 127.0.0.1:9001 check\n",
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let rules = nth(&d, "backend", 0)["http-check"].as_array().unwrap();
    let rules: Vec<&str> = rules.iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(
        rules,
        [
            "send meth HEAD uri /ping ver HTTP/1.1 hdr Host health.example",
            "expect status 200-399"
        ]
    );
}

#[test]
fn check_rules_without_their_option_are_reported() {
    let c = run("backend b\n    tcp-check send PING\\r\\n\n    server s 127.0.0.1:9001\n");
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(c.problems[0].why.contains("without the matching option"));
}

#[test]
fn global_keywords_map_and_differences_are_written() {
    let c = run(
        "global\n    nbthread 2\n    cpu-map auto:1/1-2 2,5\n    no strict-limits\n    nosplice\n\
         tune.bufsize 32768\n    maxpipes 100\n    log 10.0.0.1 len 1024 format rfc5424 local2 info\n\
         log-tag edge\n    log stderr local0\n\
         stats socket /run/percore.sock mode 600 level admin expose-fd listeners\n    stats timeout 1m\n",
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let g = d["global"].as_table().unwrap();
    assert_eq!(text(&g["threads"]), "[2, 5]");
    assert_eq!(text(&g["strict-limits"]), "false");
    assert_eq!(text(&g["tune"]["splice"]), "false");
    assert_eq!(text(&g["tune"]["bufsize"]), "32768");
    let logs = g["log"].as_array().unwrap();
    assert_eq!(
        logs.get(0).unwrap().to_string().trim(),
        "{ target = \"udp://10.0.0.1:514\", format = \"rfc5424\", facility = \"local2\" }"
    );
    assert!(logs.get(1).unwrap().to_string().contains("tag = \"edge\""));
    assert!(c.toml.contains("HAProxy derives the global maxconn"));
    assert!(c.toml.contains("without hard-stop-after"));
}

#[test]
fn what_percore_lacks_is_reported_with_a_hint() {
    let c = run(
        "global\n    daemon\n    user haproxy\n    log ring@buf local0\n\
         frontend f\n    bind :80 accept-proxy\n    tcp-request content reject\n    option foo\n\
         stick-table type ip size 1m\n    http-request silent-drop\n    default_backend b\n\
         tcp-request session track-sc0 src\n\
         backend b\n    server s 127.0.0.1:9001 send-proxy-v2-ssl\n    server h 127.0.0.1:9002 proto fcgi\n\
         resolvers dns\n    nameserver ns 10.0.0.1:53\n",
    );
    let lines: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    let expect = [
        ("haproxy.cfg:2: daemon: ", "systemd"),
        ("haproxy.cfg:4: log ring@buf local0: ", "unix:/path"),
        ("haproxy.cfg:8: option foo: ", "hint:"),
        ("haproxy.cfg:10: http-request silent-drop: ", "actions"),
        (
            "haproxy.cfg:12: tcp-request session track-sc0 src: ",
            "tcp-request rules",
        ),
        (
            "haproxy.cfg:14: server s 127.0.0.1:9001 send-proxy-v2-ssl: ",
            "SSL TLVs",
        ),
        (
            "haproxy.cfg:15: server h 127.0.0.1:9002 proto fcgi: ",
            "HTTP/2",
        ),
        ("haproxy.cfg:16: resolvers dns: ", "1 line(s)"),
    ];
    for (start, has) in expect {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(start) && l.contains(has)),
            "no `{start}...{has}` in {lines:#?}"
        );
        assert!(
            c.toml.contains(&format!("# NOT CONVERTED {start}")),
            "{}",
            c.toml
        );
    }
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
}

/// What percore gained alongside the converter: privilege drop, the
/// PROXY protocol both ways and tcp-request rules map to their keys.
#[test]
fn process_proxy_protocol_and_tcp_request_lines_map_to_keys() {
    let c = run(
        "global\n    user haproxy\n    group haproxy\n    chroot /var/empty\n\
         pidfile /run/haproxy.pid\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
         frontend f\n    bind 127.0.0.1:8443 accept-proxy\n    tcp-request inspect-delay 5s\n\
         tcp-request connection reject if { src 192.0.2.0/24 }\n\
         tcp-request content accept if { req.ssl_hello_type 1 }\n    default_backend b\n\
         backend b\n    default-server send-proxy-v2 check-send-proxy\n\
         server s 127.0.0.1:9001 check\n    server t 127.0.0.1:9002 no-send-proxy-v2 send-proxy\n",
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let g = &d["global"];
    assert_eq!(text(&g["user"]), "\"haproxy\"");
    assert_eq!(text(&g["group"]), "\"haproxy\"");
    assert_eq!(text(&g["chroot"]), "\"/var/empty\"");
    assert_eq!(text(&g["pidfile"]), "\"/run/haproxy.pid\"");
    let f = nth(&d, "frontend", 0);
    assert_eq!(text(&f["bind"][0]["accept-proxy"]), "true");
    let rules: Vec<&str> = f["tcp-request"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "inspect-delay 5s",
            "connection reject if { src 192.0.2.0/24 }",
            "content accept if { req.ssl_hello_type 1 }",
        ]
    );
    let b = nth(&d, "backend", 0);
    let s = &b["servers"][0];
    assert_eq!(text(&s["send-proxy-v2"]), "true");
    assert_eq!(text(&s["check-send-proxy"]), "true");
    // default-server is resolved into each server: `no-send-proxy-v2`
    // leaves the key out.
    let t = b["servers"][1].as_inline_table().unwrap();
    assert!(!t.contains_key("send-proxy-v2"), "{t}");
    assert_eq!(text(&b["servers"][1]["send-proxy"]), "true");
}

#[test]
fn rule_words_keep_their_meaning() {
    let c = run(concat!(
        "frontend f\n    mode http\n    bind 127.0.0.1:8001\n",
        "    acl api path_reg ^/api/v[0-9]+\\.json$\n",
        "    acl api hdr(host) -i \"api.example.com\"\n",
        "    http-request set-header X-Note \"a b\\tc\"\n",
        "    http-request replace-header Referer '^http://(.*)$' https://\\1\n",
        "    use_backend b if api\n    default_backend b\n",
        "backend b\n    mode http\n    server s 127.0.0.1:9001\n",
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let f = nth(&d, "frontend", 0);
    let api: Vec<&str> = f["acl"]["api"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        api,
        [
            r"path_reg ^/api/v[0-9]+\.json$",
            "hdr(host) -i api.example.com"
        ]
    );
    let rules: Vec<&str> = f["http-request"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "set-header X-Note \"a b\\tc\"",
            r"replace-header Referer ^http://(.*)$ https://\1"
        ]
    );
}

#[test]
fn tls_binds_say_what_haproxy_offers() {
    let c = run(
        "global\n    crt-base /etc/ssl/site\n    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tlsv11\n\
         frontend f\n    mode http\n    bind :443,:8443 ssl crt site.pem alpn h2,http/1.1\n\
         bind :444 ssl crt /abs.pem\n    default_backend b\n\
         frontend t\n    mode tcp\n    bind :445 ssl crt /abs.pem alpn h2\n    default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n",
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let binds: Vec<String> = nth(&d, "frontend", 0)["bind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(binds.len(), 3);
    assert!(binds[0].contains("crt = \"/etc/ssl/site/site.pem\""));
    assert!(binds[0].contains("alpn = [\"h2\", \"http/1.1\"]") && binds[1].contains("\":8443\""));
    assert!(binds[0].contains("ssl-min-ver = \"TLSv1.2\""));
    assert!(binds[2].contains("alpn = []"), "{}", binds[2]);
    // Mode tcp: percore passes any protocol name through.
    assert!(nth(&d, "frontend", 1)["bind"]
        .to_string()
        .contains("alpn = [\"h2\"]"));
}

#[test]
fn a_stats_listener_becomes_the_stats_section() {
    let c = run(&format!(
        "listen stats\n    mode http\n    bind 127.0.0.1:8404\n    stats enable\n    stats auth a:b\n\
         stats refresh 5s\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         listen app\n    bind 127.0.0.1:8001\n{TIMEOUTS}    server s 127.0.0.1:9001\n",
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let s = d["stats"].as_table().unwrap();
    assert_eq!(text(&s["bind"]), "\"127.0.0.1:8404\"");
    assert_eq!(text(&s["uri"]), "\"/stats\"");
    assert_eq!(text(&s["auth"]), "\"a:b\"");
    assert!(c.toml.contains("/haproxy?stats"));
    assert!(c.toml.contains("Prometheus metrics at /metrics"));
    check_loads(&c);
}

#[test]
fn userlists_and_groups() {
    let c = run(
        "userlist admins\n    group ops users alice\n    user alice password $6$x$y groups ops\n\
         user bob insecure-password 'pa ss'\n",
    );
    assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    let d = doc(&c);
    let users = nth(&d, "userlist", 0)["users"].to_string();
    assert!(
        users.contains("{ name = \"alice\", password = \"$6$x$y\" }"),
        "{users}"
    );
    assert!(users.contains("insecure-password = \"pa ss\""), "{users}");
}

#[test]
fn hostile_bytes_stay_valid_toml() {
    // Non-UTF-8, NUL, escape and control bytes in words and comments.
    let mut cfg = b"frontend f\n    mode http\n    bind 127.0.0.1:8001\n    http-request set-header X-A \"\\x01\\xff\\x00\"\n    acl x hdr(a) \xff\xfe\x1b[31m\n    default_backend b\n".to_vec();
    cfg.extend_from_slice(b"backend b\n    mode http\n    server s 127.0.0.1:9001 # \x07 bell\n");
    let c = convert(
        &[Input {
            name: "bad\u{1b}name.cfg".into(),
            bytes: cfg,
        }],
        &|_| None,
    );
    let d = doc(&c);
    let rule = nth(&d, "frontend", 0)["http-request"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rule, "set-header X-A \"\\x01\\xff\\x00\"");
    assert!(
        !c.toml.chars().any(|ch| ch.is_control() && ch != '\n'),
        "{:?}",
        c.toml
    );
}

#[test]
fn unreadable_lines_are_reported_and_skipped() {
    let c = run("frontend f\n    bind 'unterminated\n.if 1\n    bind :80\n");
    let lines: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    assert!(lines[0].starts_with("haproxy.cfg:2: bind 'unterminated: unterminated single quote"));
    assert!(
        lines.iter().any(|l| l.contains(".if block without .endif")),
        "{lines:?}"
    );
}

#[test]
fn environment_variables_fill_addresses() {
    let c = run_env(
        "frontend f\n    bind \"${ADDR}\"\n    bind \"${MISSING-127.0.0.1:8002}\"\n    default_backend b\n\
         backend b\n    server s \"${SRV}\" weight \"${W-7}\"\n",
        &[("ADDR", "127.0.0.1:8001"), ("SRV", "127.0.0.1:9001")],
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    assert_eq!(
        nth(&d, "frontend", 0)["bind"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>(),
        ["127.0.0.1:8001", "127.0.0.1:8002"]
    );
    let server = nth(&d, "backend", 0)["servers"].to_string();
    assert!(server.contains("\"127.0.0.1:9001\"") && server.contains("weight = 7"));
}

#[test]
fn http_logging_without_httplog_keeps_haproxys_default_format() {
    let c = run(&format!(
        "global\n    log stdout local0\ndefaults\n    mode http\n    log global\n{TIMEOUTS}\
         frontend plain\n    bind 127.0.0.1:8001\n    default_backend b\n\
         frontend detailed\n    bind 127.0.0.1:8002\n    option httplog\n    default_backend b\n\
         backend b\n    log global\n    server s 127.0.0.1:9001\n"
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    assert_eq!(text(&nth(&d, "frontend", 0)["log-format"]), "\"tcplog\"");
    assert_eq!(text(&nth(&d, "frontend", 1)["log-format"]), "\"httplog\"");
    check_loads(&c);
}

#[test]
fn syslog_sockets_convert_to_unix_targets() {
    let c = run(&format!(
        "global\n    log /dev/log local0\n    log unix@/run/log.sock local1\n\
         defaults\n    mode http\n{TIMEOUTS}frontend f\n    bind 127.0.0.1:8001\n    default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n"
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert!(
        c.toml.contains("\"unix:/dev/log\",  # haproxy.cfg:2"),
        "{}",
        c.toml
    );
    assert!(
        c.toml.contains("target = \"unix:/run/log.sock\""),
        "{}",
        c.toml
    );
    check_loads(&c);
}

#[test]
fn custom_log_format_lines_convert() {
    let format = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
    let c = run(&format!(
        "global\n    log stdout local0\ndefaults\n    mode http\n    log global\n    log-format \"{format}\"\n{TIMEOUTS}\
         frontend f\n    bind 127.0.0.1:8001\n    default_backend b\n\
         frontend g\n    bind 127.0.0.1:8002\n    log-format %ci\\ %ST\\ \"%{{+Q}}HU\"\n    default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n"
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
    assert_eq!(text(&nth(&d, "frontend", 0)["log-format"]), quoted(format));
    assert_eq!(
        text(&nth(&d, "frontend", 1)["log-format"]),
        // HAProxy's quotes group words; they are not part of the format.
        quoted("%ci %ST %{+Q}HU")
    );
    check_loads(&c);
}

#[test]
fn unique_id_lines_convert() {
    let c = run(&format!(
        "defaults\n    mode http\n{TIMEOUTS}frontend f\n    bind 127.0.0.1:8001\n\
         \x20   unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid\n    unique-id-header X-Unique-ID\n\
         \x20   log-format \"%ci %ID\"\n    default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n"
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let f = nth(&d, "frontend", 0);
    assert_eq!(
        text(&f["unique-id-format"]),
        "\"%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid\""
    );
    assert_eq!(text(&f["unique-id-header"]), "\"X-Unique-ID\"");
    check_loads(&c);
    let c = run(&format!(
        "defaults\n    mode http\n{TIMEOUTS}frontend f\n    bind 127.0.0.1:8001\n\
         \x20   unique-id-format %ci_%bi\n    default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n"
    ));
    assert!(
        c.problems
            .iter()
            .any(|p| p.why.contains("unique-id-format: log variable %bi")),
        "{:?}",
        c.problems
    );
}

#[test]
fn log_formats_percore_cannot_log_are_refused() {
    for (line, why) in [
        ("log-format \"%ci %bi\"", "%bi is not supported"),
        ("log-format \"%ci %Tx\"", "unknown log variable %Tx"),
        ("log-format \"%{+Z}r\"", "unknown log-format flag"),
        ("log-format %ci %cp", "takes one argument"),
        ("log-format plain", "has no variable"),
    ] {
        let c = run(&format!(
            "defaults\n    mode http\n{TIMEOUTS}frontend f\n    bind 127.0.0.1:8001\n    {line}\n    default_backend b\n\
             backend b\n    server s 127.0.0.1:9001\n"
        ));
        assert!(
            c.problems.iter().any(|p| p.why.contains(why)),
            "{line}: {:?}",
            c.problems
        );
    }
}

#[test]
fn http2_binds_and_tune_h2_map() {
    let c = run(
        "global\n    tune.h2.max-concurrent-streams 200\n    tune.h2.initial-window-size 1048576\n\
         frontend f\n    mode http\n    bind :8080 proto h2\n    bind :8081 proto fcgi\n    default_backend b\n\
         backend b\n    mode http\n    server s 127.0.0.1:9001\n",
    );
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(
        c.problems[0].why.contains("proto `fcgi`"),
        "{:?}",
        c.problems
    );
    let d = doc(&c);
    assert_eq!(
        d["global"]["tune"]["h2"]["max-concurrent-streams"].as_integer(),
        Some(200)
    );
    assert_eq!(
        d["global"]["tune"]["h2"]["initial-window-size"].as_integer(),
        Some(1_048_576)
    );
    let bind = nth(&d, "frontend", 0)["bind"].to_string();
    assert!(bind.contains("proto = \"h2\""), "{bind}");
}

#[test]
fn servers_speaking_h2_map_to_proto() {
    let c = run("backend b\n    mode http\n    default-server proto h2\n\
         server a 127.0.0.1:9001\n    server b 127.0.0.1:9002 proto h1\n\
         server c 127.0.0.1:9003 ssl verify none alpn h2\n\
         server d 127.0.0.1:9004 ssl verify none alpn h2,http/1.1 proto h1\n");
    let d = doc(&c);
    let servers = d["backend"][0]["servers"].as_array().unwrap();
    let proto: Vec<Option<&str>> = servers
        .iter()
        .map(|s| {
            s.as_inline_table()
                .and_then(|t| t.get("proto"))
                .and_then(|p| p.as_str())
        })
        .collect();
    assert_eq!(
        proto,
        [Some("h2"), Some("h1"), Some("h2"), Some("h1")],
        "{}",
        c.toml
    );
    // A choice left to the server is reported, not guessed.
    let lines: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("alpn h2,http/1.1") && l.contains("proto h2")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

#[test]
fn stick_tables_tracking_and_stick_rules_convert_and_load() {
    let cfg = format!(
        "defaults\n    mode http\n{TIMEOUTS}\
         frontend f\n    bind 127.0.0.1:8001\n\
         \x20   stick-table type ip size 100k expire 30s store http_req_rate(10s),gpc0\n\
         \x20   tcp-request connection track-sc1 src table per_key\n\
         \x20   http-request track-sc0 src\n\
         \x20   http-request sc-inc-gpc0(0) if {{ path /login }}\n\
         \x20   http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 100 }}\n\
         \x20   http-request deny if {{ req.hdr(x-api-key),table_conn_cur(per_key) gt 10 }}\n\
         \x20   http-request set-header X-Rate %[src,table_http_req_rate(f)]\n\
         \x20   http-request deny if {{ table_avl(per_key) lt 10 }} || {{ table_cnt gt 1000 }}\n\
         \x20   default_backend b\n\
         backend per_key\n    stick-table type string len 32 size 1m store conn_cur\n\
         backend b\n    stick-table type ip size 1k\n    stick on src\n    server s 127.0.0.1:9001\n\
         listen l\n    bind 127.0.0.1:8002\n    stick-table type ip size 1k\n\
         \x20   stick match src if {{ src 10.0.0.0/8 }}\n    server s 127.0.0.1:9002\n"
    );
    let c = run(&cfg);
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    let d = doc(&c);
    let f = nth(&d, "frontend", 0);
    assert_eq!(
        text(&f["stick-table"]),
        "\"type ip size 100k expire 30s store http_req_rate(10s),gpc0\""
    );
    assert!(text(&f["tcp-request"]).contains("connection track-sc1 src table per_key"));
    assert!(text(&f["http-request"]).contains("sc-inc-gpc0(0) if { path /login }"));
    assert!(text(&f["http-request"])
        .contains("deny if { req.hdr(x-api-key),table_conn_cur(per_key) gt 10 }"));
    assert!(text(&f["http-request"]).contains("set-header X-Rate %[src,table_http_req_rate(f)]"));
    assert!(text(&f["http-request"])
        .contains("deny if { table_avl(per_key) lt 10 } || { table_cnt gt 1000 }"));
    let b = nth(&d, "backend", 1);
    assert_eq!(text(&b["stick"]), "[\"on src\"]");
    // A listen's table sits on its frontend half; its stick rule names it.
    let l = nth(&d, "backend", 2);
    assert_eq!(
        text(&l["stick"]),
        "[\"match src table l if { src 10.0.0.0/8 }\"]"
    );
    check_loads(&c);
}

#[test]
fn converter_chains_and_maps_convert_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("hosts.map");
    std::fs::write(&map, "www.example.com b\n").unwrap();
    let c = run(&format!(
        concat!(
            "frontend f\n    mode http\n    bind 127.0.0.1:8001\n",
            "    acl ex req.hdr(host),lower,field(-2,.) example\n",
            "    http-request set-header X-Net %[src,ipmask(24)]\n",
            "    http-request set-header X-Id %[req.hdr(host),lower,crc32,hex] if ex\n",
            "    use_backend %[req.hdr(host),lower,map({},b)]\n    default_backend b\n",
            "backend b\n    mode http\n    server s 127.0.0.1:9001\n",
        ),
        map.display()
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let f = nth(&d, "frontend", 0);
    assert_eq!(
        text(&f["use_backend"]),
        format!("[\"%[req.hdr(host),lower,map({},b)]\"]", map.display())
    );
    check_loads(&c);
}

#[test]
fn new_rule_actions_and_variables_convert_and_load() {
    let c = run(concat!(
        "frontend f\n    mode http\n    bind 127.0.0.1:8001\n",
        "    tcp-request content set-var(sess.src) src\n",
        "    http-request set-var(txn.host) req.hdr(host),lower\n",
        "    http-request replace-path ^/old/(.*)$ /new/\\1\n",
        "    http-request set-uri /x?h=%[var(txn.host)] if { path /x }\n",
        "    http-request replace-value X-List ^a$ b\n",
        "    http-request return status 200 content-type text/plain lf-string ok hdr X-A %[src] if { path /r }\n",
        "    http-response set-status 202 if { status 200 }\n",
        "    http-response set-var(res.s) status\n",
        "    default_backend b\n",
        "backend b\n    mode http\n    server s 127.0.0.1:9001\n",
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    check_loads(&c);
}

/// Found by fuzzing `convert`: a bind option given twice was written
/// twice into one inline table, which is not TOML.
#[test]
fn a_bind_option_given_twice_is_written_once() {
    let c = run("frontend f\n    mode http\n    bind :443 ssl crt a.pem alpn h2 ssl alpn http/1.1\n    default_backend b\nbackend b\n    server s 127.0.0.1:9001\n");
    let d = doc(&c);
    let bind = nth(&d, "frontend", 0)["bind"].as_array().unwrap();
    let table = bind.get(0).unwrap().as_inline_table().unwrap();
    assert_eq!(table.get("ssl").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(
        text(&toml_edit::Item::Value(table.get("alpn").unwrap().clone())),
        "[\"http/1.1\"]"
    );
}

/// Found by fuzzing `convert`: options repeated on a `stats socket` line
/// were written twice into one inline table.
#[test]
fn options_repeated_on_a_line_are_written_once() {
    let c =
        run("global\n    stats socket /run/p.sock mode 600 level admin mode 660 level operator\n");
    let d = doc(&c);
    let socket = d["global"]["stats-socket"].as_array().unwrap();
    let table = socket.get(0).unwrap().as_inline_table().unwrap();
    assert_eq!(
        table.get("mode").and_then(|v| v.as_str()),
        Some("660"),
        "{}",
        c.toml
    );
    assert_eq!(
        table.get("level").and_then(|v| v.as_str()),
        Some("operator")
    );
}

/// Found by fuzzing `convert`: an `acl` line with no name made the
/// converter panic.
#[test]
fn an_acl_line_without_a_name_does_not_stop_the_conversion() {
    let c = run("frontend f\n    mode http\n    bind :80\n    acl\n    default_backend b\nbackend b\n    server s 127.0.0.1:9001\n");
    doc(&c);
}

/// Found by fuzzing `convert`: a second stats page before the `global`
/// section was dropped after the global table's place was taken, and
/// the insertion ran past the end of the tables.
#[test]
fn a_dropped_stats_page_before_global_does_not_stop_the_conversion() {
    let c = run(
        "listen s1\n    mode http\n    bind :8404\n    stats enable\n\
         listen s2\n    mode http\n    bind :8405\n    stats enable\n\
         global\n    maxconn 100\n",
    );
    let d = doc(&c);
    assert!(d.get("global").is_some(), "{}", c.toml);
    assert!(
        c.problems.iter().any(|p| p.why.contains("one stats page")),
        "{:?}",
        c.problems
    );
}

#[test]
fn http_buffer_request_converts_and_its_body_rules_load() {
    let cfg = format!(
        "defaults\n    mode http\n{TIMEOUTS}\
         frontend f\n    bind 127.0.0.1:8001\n    option http-buffer-request\n\
         \x20   http-request deny if {{ req.body -m sub secret }}\n    default_backend b\n\
         backend b\n    no option http-buffer-request\n    server s 127.0.0.1:9001\n"
    );
    let c = run(&cfg);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    assert_eq!(text(&nth(&d, "frontend", 0)["http-buffer-request"]), "true");
    assert_eq!(text(&nth(&d, "backend", 0)["http-buffer-request"]), "false");
    check_loads(&c);
}

#[test]
fn mtls_bind_options_convert() {
    let c = run(
        "global\n    ca-base /etc/ssl/ca\n\
         frontend f\n    mode http\n    bind :443 ssl crt /s.pem verify required ca-file clients.pem crl-file /r.crl\n\
         \x20   http-request set-header X-DN %[ssl_c_s_dn(CN)]\n    default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n",
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let bind = nth(&doc(&c), "frontend", 0)["bind"].to_string();
    assert!(bind.contains("verify = \"required\""), "{bind}");
    assert!(
        bind.contains("ca-file = \"/etc/ssl/ca/clients.pem\""),
        "{bind}"
    );
    assert!(bind.contains("crl-file = \"/r.crl\""), "{bind}");
}

/// The lines of issue #18's actions convert as written: captures and
/// their slots, log-format-sd, the new actions, syslog over TCP.
#[test]
fn new_actions_and_capture_lines_convert() {
    let c = run(&format!(
        "global\n    log tcp@127.0.0.1:601 local0\n\
         defaults\n    mode http\n{TIMEOUTS}frontend f\n    bind 127.0.0.1:8001\n\
         \x20   capture response header Server len 20\n    declare capture request len 12\n\
         \x20   capture cookie SESS len 32\n\
         \x20   log-format-sd \"[x@1 s=\\\"%ST\\\"]\"\n\
         \x20   http-request capture path id 0\n    http-request set-method POST\n\
         \x20   http-request normalize-uri path-merge-slashes\n\
         \x20   http-response capture res.hdr(x-a) id 0\n    http-response set-log-level silent\n\
         \x20   default_backend b\n\
         backend b\n    server s 127.0.0.1:9001\n"
    ));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let d = doc(&c);
    let f = nth(&d, "frontend", 0);
    let all = f.to_string();
    for needed in [
        "capture-response-header",
        "capture-cookie",
        "declare-capture",
        "log-format-sd",
        "capture path id 0",
        "set-method POST",
        "set-log-level silent",
    ] {
        assert!(all.contains(needed), "no {needed} in {all}");
    }
    assert!(c.toml.contains("tcp://127.0.0.1:601"), "{}", c.toml);
    check_loads(&c);
}
