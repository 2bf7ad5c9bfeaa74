//! Every sample fetch of the rule language, one entry each: name and
//! aliases, arguments, output type, where it is allowed, a one-line
//! description and the function that builds it from its arguments.
//! Parsing, the "unknown fetch" hint, the did-you-mean candidates and
//! the table in docs/configuration.md (checked by a test) all read this
//! table: adding a fetch is one entry.

use super::fetch::{self as f, Call};
use super::{stick_rules, Parsed};
use crate::rules::{Fetch, SampleType};

/// One argument of a fetch.
pub(crate) struct FetchArg {
    /// How usage lines write it, without the angle brackets.
    pub usage: &'static str,
    /// What it is, for "needs one argument, the ..." messages.
    pub what: &'static str,
    pub optional: bool,
}

const fn req(usage: &'static str, what: &'static str) -> FetchArg {
    FetchArg {
        usage,
        what,
        optional: false,
    }
}

const fn opt(usage: &'static str, what: &'static str) -> FetchArg {
    FetchArg {
        usage,
        what,
        optional: true,
    }
}

/// The type of a fetch's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Of(SampleType),
    /// Whatever was stored (`var`).
    Stored,
}

impl Output {
    /// As the docs table writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Output::Of(SampleType::Str) => "str",
            Output::Of(SampleType::Int) => "int",
            Output::Of(SampleType::Ip) => "ip",
            Output::Of(SampleType::Bool) => "bool",
            Output::Stored => "as stored",
        }
    }
}

/// Where a fetch has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allowed {
    Anywhere,
    /// `http-response` rules only.
    Response,
    /// Where the client's first bytes can be looked at (`tcp-request
    /// content`, `use_backend` in mode tcp, named ACLs).
    Payload,
}

impl Allowed {
    /// The note hints and the docs table add after the description.
    pub(crate) fn note(self) -> &'static str {
        match self {
            Allowed::Anywhere => "",
            Allowed::Response => " (http-response only)",
            Allowed::Payload => " (tcp-request content, use_backend in mode tcp)",
        }
    }
}

/// One fetch.
pub(crate) struct FetchDef {
    /// The name; a family of stick-table fetches ends with `<x>`, which
    /// stands for any counter name (`sc0_<x>`: `sc0_http_req_rate`...).
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub args: &'static [FetchArg],
    pub output: Output,
    pub allowed: Allowed,
    pub description: &'static str,
    /// Builds the fetch once the name and arity are checked.
    pub build: fn(&Call<'_, '_>) -> Parsed<Fetch>,
}

impl FetchDef {
    /// The family prefix (`sc0_` of `sc0_<x>`), for a family entry.
    pub(crate) fn family(&self) -> Option<&'static str> {
        self.name.strip_suffix("<x>")
    }

    /// The arguments as written after the name: `(<name>[,<occ>])`.
    pub(crate) fn args_usage(&self) -> String {
        if self.args.is_empty() {
            return String::new();
        }
        let mut out = String::from("(");
        let mut closing = String::new();
        for (i, a) in self.args.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if a.optional {
                out.push_str(&format!("[{sep}<{}>", a.usage));
                closing.push(']');
            } else {
                out.push_str(&format!("{sep}<{}>", a.usage));
            }
        }
        out.push_str(&closing);
        out.push(')');
        out
    }

    /// `name(<args>)`, as hints write it.
    pub(crate) fn usage(&self) -> String {
        format!("{}{}", self.name, self.args_usage())
    }

    pub(crate) fn required(&self) -> usize {
        self.args.iter().filter(|a| !a.optional).count()
    }
}

use Allowed::{Anywhere, Payload, Response};
use SampleType::{Bool, Int, Ip, Str};

const fn of(t: SampleType) -> Output {
    Output::Of(t)
}

const NAME: &[FetchArg] = &[req("name", "header name"), opt("occ", "occurrence")];
const TABLE: &[FetchArg] = &[opt("table", "table name")];

/// Every fetch, in the order of the docs table.
pub(crate) static FETCHES: &[FetchDef] = &[
    FetchDef { name: "hdr", aliases: &[], args: NAME, output: of(Str), allowed: Anywhere, description: "each comma-separated value of every field `<name>` (of the request in `http-request`, of the response in `http-response`), or only the `<occ>`-th of them: 1 the first, -1 the last (repeated fields and comma lists counted together)", build: f::hdr },
    FetchDef { name: "req.hdr", aliases: &[], args: NAME, output: of(Str), allowed: Anywhere, description: "`hdr` of the request", build: f::hdr },
    FetchDef { name: "res.hdr", aliases: &[], args: NAME, output: of(Str), allowed: Anywhere, description: "`hdr` of the response", build: f::hdr },
    FetchDef { name: "hdr_cnt", aliases: &[], args: &[req("name", "header name")], output: of(Int), allowed: Anywhere, description: "number of values of `<name>`", build: f::hdr_cnt },
    FetchDef { name: "req.hdr_cnt", aliases: &[], args: &[req("name", "header name")], output: of(Int), allowed: Anywhere, description: "`hdr_cnt` of the request", build: f::hdr_cnt },
    FetchDef { name: "res.hdr_cnt", aliases: &[], args: &[req("name", "header name")], output: of(Int), allowed: Anywhere, description: "`hdr_cnt` of the response", build: f::hdr_cnt },
    FetchDef { name: "path", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the path, without the query", build: |_| Ok(Fetch::Path) },
    FetchDef { name: "url", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the request target as received", build: |_| Ok(Fetch::Url) },
    FetchDef { name: "url_param", aliases: &["urlp"], args: &[req("name", "parameter name")], output: of(Str), allowed: Anywhere, description: "value of query parameter `<name>`", build: |c| Ok(Fetch::UrlParam(c.arg(0).into())) },
    FetchDef { name: "query", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the query string without `?`", build: |_| Ok(Fetch::Query) },
    FetchDef { name: "method", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the method as received", build: |_| Ok(Fetch::Method) },
    FetchDef { name: "req.ver", aliases: &["req_ver"], args: &[], output: of(Str), allowed: Anywhere, description: "`1.0` or `1.1`", build: |_| Ok(Fetch::ReqVer) },
    FetchDef { name: "src", aliases: &[], args: &[], output: of(Ip), allowed: Anywhere, description: "client address (IPv4-mapped IPv6 seen as IPv4)", build: |_| Ok(Fetch::Src) },
    FetchDef { name: "src_port", aliases: &[], args: &[], output: of(Int), allowed: Anywhere, description: "client port", build: |_| Ok(Fetch::SrcPort) },
    FetchDef { name: "dst", aliases: &[], args: &[], output: of(Ip), allowed: Anywhere, description: "the address the client connected to", build: |_| Ok(Fetch::Dst) },
    FetchDef { name: "dst_port", aliases: &[], args: &[], output: of(Int), allowed: Anywhere, description: "the port the client connected to", build: |_| Ok(Fetch::DstPort) },
    FetchDef { name: "fc_pp_authority", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the authority TLV of the connection's PROXY v2 header", build: |_| Ok(Fetch::FcPpAuthority) },
    FetchDef { name: "fc_pp_unique_id", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the unique-id TLV of the connection's PROXY v2 header", build: |_| Ok(Fetch::FcPpUniqueId) },
    FetchDef { name: "req.len", aliases: &[], args: &[], output: of(Int), allowed: Payload, description: "bytes the client sent so far", build: |_| Ok(Fetch::ReqLen) },
    FetchDef { name: "req.payload", aliases: &[], args: &[req("offset", "offset"), req("length", "length")], output: of(Str), allowed: Payload, description: "those bytes of what the client sent (length 0: to the end)", build: f::req_payload },
    FetchDef { name: "req.ssl_hello_type", aliases: &[], args: &[], output: of(Int), allowed: Payload, description: "1 when the client's first TLS record is a ClientHello", build: |_| Ok(Fetch::ReqSslHelloType) },
    FetchDef { name: "req.ssl_sni", aliases: &[], args: &[], output: of(Str), allowed: Payload, description: "the server name in the client's ClientHello (not decrypted, not terminated)", build: |_| Ok(Fetch::ReqSslSni) },
    FetchDef { name: "req.ssl_ver", aliases: &[], args: &[], output: of(Int), allowed: Payload, description: "the ClientHello's (legacy) version, e.g. 771 for 0x0303", build: |_| Ok(Fetch::ReqSslVer) },
    FetchDef { name: "req.ssl_alpn", aliases: &[], args: &[], output: of(Str), allowed: Payload, description: "each protocol of the ClientHello's ALPN list", build: |_| Ok(Fetch::ReqSslAlpn) },
    FetchDef { name: "ssl_fc", aliases: &[], args: &[], output: of(Bool), allowed: Anywhere, description: "the connection is TLS", build: |_| Ok(Fetch::SslFc) },
    FetchDef { name: "ssl_fc_sni", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the SNI the client sent", build: |_| Ok(Fetch::SslFcSni) },
    FetchDef { name: "ssl_fc_protocol", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "`TLSv1.2` or `TLSv1.3`", build: |_| Ok(Fetch::SslFcProtocol) },
    FetchDef { name: "ssl_fc_cipher", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the cipher suite's OpenSSL name (`TLS_AES_256_GCM_SHA384`, `ECDHE-RSA-AES128-GCM-SHA256`), as HAProxy reports it", build: |_| Ok(Fetch::SslFcCipher) },
    FetchDef { name: "ssl_fc_alpn", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the ALPN protocol agreed on with the client", build: |_| Ok(Fetch::SslFcAlpn) },
    FetchDef { name: "req.cook", aliases: &["cook"], args: &[req("name", "cookie name")], output: of(Str), allowed: Anywhere, description: "value of cookie `<name>`", build: |c| Ok(Fetch::ReqCook(c.arg(0).into())) },
    FetchDef { name: "res.cook", aliases: &["scook"], args: &[req("name", "cookie name")], output: of(Str), allowed: Response, description: "value of cookie `<name>` set by the response: the first `name=value` of each Set-Cookie field", build: |c| Ok(Fetch::ResCook(c.arg(0).into())) },
    FetchDef { name: "http_auth", aliases: &[], args: &[req("userlist", "userlist name")], output: of(Bool), allowed: Anywhere, description: "the request's basic-auth credentials are valid in the userlist", build: f::http_auth },
    FetchDef { name: "status", aliases: &[], args: &[], output: of(Int), allowed: Response, description: "response status", build: |_| Ok(Fetch::Status) },
    FetchDef { name: "base", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the first Host field followed by the path", build: |_| Ok(Fetch::Base) },
    FetchDef { name: "base32", aliases: &[], args: &[], output: of(Int), allowed: Anywhere, description: "a 32-bit hash of `base` (HAProxy's: SDBM, then its avalanche)", build: |_| Ok(Fetch::Base32) },
    FetchDef { name: "date", aliases: &[], args: &[opt("offset", "offset in seconds")], output: of(Int), allowed: Anywhere, description: "the UNIX time now, plus offset seconds", build: f::date },
    FetchDef { name: "rand", aliases: &[], args: &[opt("range", "range")], output: of(Int), allowed: Anywhere, description: "a random integer below range (32 bits without it); not for secrets", build: f::rand },
    FetchDef { name: "env", aliases: &[], args: &[req("name", "environment variable name")], output: of(Str), allowed: Anywhere, description: "the environment variable, read once at load; no sample if unset", build: f::env },
    FetchDef { name: "hostname", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the host name, read at load", build: |_| Ok(Fetch::Hostname(crate::log::syslog::hostname().into_bytes().into())) },
    FetchDef { name: "unique-id", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the request's `unique-id-format` value; no sample without one", build: |_| Ok(Fetch::UniqueId) },
    FetchDef { name: "var", aliases: &[], args: &[req("scope>.<name", "variable name")], output: Output::Stored, allowed: Anywhere, description: "a variable (see [Variables](#variables))", build: f::var },
    FetchDef { name: "nbsrv", aliases: &[], args: &[req("backend", "backend name")], output: of(Int), allowed: Anywhere, description: "servers of the backend that can take traffic now (up, not in maintenance), as this core's balancing sees them", build: f::nbsrv },
    FetchDef { name: "fe_conn", aliases: &[], args: &[opt("frontend", "frontend name")], output: of(Int), allowed: Anywhere, description: "connections the frontend (this one without `<frontend>`) has now, over every core: this core's exact count plus the others' as they published it at most 100 ms ago", build: f::fe_conn },
    FetchDef { name: "be_conn", aliases: &[], args: &[opt("backend", "backend name")], output: of(Int), allowed: Anywhere, description: "sessions the backend (this one without `<backend>`, in a backend's rules) has now, over every core, as `fe_conn`", build: f::be_conn },
    FetchDef { name: "srv_is_up", aliases: &[], args: &[req("backend>/<server", "backend/server")], output: of(Bool), allowed: Anywhere, description: "the server is up and not in maintenance", build: f::srv_is_up },
    FetchDef { name: "req.body", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the request body waited for by `http-buffer-request` (de-chunked; at most what fit in the buffer); no sample without the option (http-request only)", build: f::body },
    FetchDef { name: "req.body_len", aliases: &[], args: &[], output: of(Int), allowed: Anywhere, description: "its length in bytes (below the announced one when the body is larger than the buffer)", build: f::body },
    FetchDef { name: "req.body_size", aliases: &[], args: &[], output: of(Int), allowed: Anywhere, description: "the announced `Content-Length`; for a chunked body, the bytes waited for", build: f::body },
    FetchDef { name: "req.body_param", aliases: &[], args: &[opt("name", "parameter name"), opt("i", "`i` to ignore case")], output: of(Str), allowed: Anywhere, description: "the value of the first `<name>=value` pair of a url-encoded body (any name when none is given; `i`: the name case-insensitively, which HAProxy 2.6 does not take), not url-decoded", build: f::body },
    FetchDef { name: "ssl_c_used", aliases: &[], args: &[], output: of(Bool), allowed: Anywhere, description: "the client presented a certificate (TLS connections; no sample on plain ones)", build: f::client_cert },
    FetchDef { name: "ssl_fc_has_crt", aliases: &[], args: &[], output: of(Bool), allowed: Anywhere, description: "as `ssl_c_used`", build: f::client_cert },
    FetchDef { name: "ssl_c_verify", aliases: &[], args: &[], output: of(Int), allowed: Anywhere, description: "0: every certificate that got through verified (see [mTLS](#tls-binds))", build: f::client_cert },
    FetchDef { name: "ssl_c_s_dn", aliases: &[], args: &[opt("entry", "attribute"), opt("occ", "occurrence")], output: of(Str), allowed: Anywhere, description: "the subject name of the client's certificate, OpenSSL's one-line form (`/C=FR/O=Example/CN=alice`); with `<entry>` (`CN`, `O`, `OU`, `C`, `emailAddress`... any case, or a dotted OID) its value, the `<occ>`-th (1 the first, the default; -1 the last). The `<format>` argument (`rfc2253`) is not supported", build: f::client_cert },
    FetchDef { name: "ssl_c_i_dn", aliases: &[], args: &[opt("entry", "attribute"), opt("occ", "occurrence")], output: of(Str), allowed: Anywhere, description: "as `ssl_c_s_dn`, of the issuer", build: f::client_cert },
    FetchDef { name: "ssl_c_serial", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the serial number's bytes, without DER's sign padding (binary: `%[ssl_c_serial,hex]`)", build: f::client_cert },
    FetchDef { name: "ssl_c_sha1", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the SHA-1 of the certificate's DER (binary)", build: f::client_cert },
    FetchDef { name: "ssl_c_notbefore", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the start of the validity, `YYMMDDhhmmssZ`; as HAProxy 2.6, no sample for a year outside 2000-2049", build: f::client_cert },
    FetchDef { name: "ssl_c_notafter", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the end of the validity, as `ssl_c_notbefore`", build: f::client_cert },
    FetchDef { name: "ssl_c_der", aliases: &[], args: &[], output: of(Str), allowed: Anywhere, description: "the certificate, DER (binary)", build: f::client_cert },
    FetchDef { name: "table_cnt", aliases: &[], args: TABLE, output: of(Int), allowed: Anywhere, description: "entries in use in the table (the section's own without `<table>`), summed over every core", build: f::stick },
    FetchDef { name: "table_avl", aliases: &[], args: TABLE, output: of(Int), allowed: Anywhere, description: "free entries: the table's `size` minus `table_cnt`", build: f::stick },
    FetchDef { name: "sc_<x>", aliases: &[], args: &[req("n", "counter number"), opt("table", "table name")], output: of(Int), allowed: Anywhere, description: "counter `<x>` of the entry counter `<n>` tracks (or of the same key in `<table>`); see [Stick tables](#fetches)", build: f::stick },
    FetchDef { name: "sc0_<x>", aliases: &[], args: TABLE, output: of(Int), allowed: Anywhere, description: "`sc_<x>(0[,<table>])`", build: f::stick },
    FetchDef { name: "sc1_<x>", aliases: &[], args: TABLE, output: of(Int), allowed: Anywhere, description: "`sc_<x>(1[,<table>])`", build: f::stick },
    FetchDef { name: "sc2_<x>", aliases: &[], args: TABLE, output: of(Int), allowed: Anywhere, description: "`sc_<x>(2[,<table>])`", build: f::stick },
    FetchDef { name: "src_<x>", aliases: &[], args: TABLE, output: of(Int), allowed: Anywhere, description: "counter `<x>` of the client address's entry (looked up, not created); 0 when absent", build: f::stick },
];

/// The entry for `name` (a name, an alias or a member of a family).
pub(crate) fn find(name: &str) -> Option<&'static FetchDef> {
    FETCHES
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
        .or_else(|| {
            FETCHES.iter().find(|d| {
                d.family().is_some_and(|prefix| {
                    name.strip_prefix(prefix)
                        .is_some_and(|x| stick_rules::reads(prefix == "src_").contains(&x))
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row docs/configuration.md has for `def`.
    fn doc_row(def: &FetchDef) -> String {
        let mut names = vec![format!("`{}`", def.name)];
        names.extend(def.aliases.iter().map(|a| format!("`{a}`")));
        let args = def.args_usage();
        let args = if args.is_empty() {
            String::new()
        } else {
            format!("`{args}`")
        };
        format!(
            "| {} | {} | {} | {}{} |",
            names.join(", "),
            args,
            def.output.name(),
            def.description,
            def.allowed.note()
        )
    }

    /// The rows of the fetch table in docs/configuration.md.
    fn documented() -> Vec<&'static str> {
        let docs = include_str!("../../../docs/configuration.md");
        let start = docs
            .find("| fetch | arguments | type | description |")
            .expect("docs/configuration.md has the fetch table");
        docs[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect()
    }

    #[test]
    fn docs_table_is_the_fetch_table() {
        let rows = documented();
        for def in FETCHES {
            let row = doc_row(def);
            assert!(
                rows.contains(&row.as_str()),
                "docs/configuration.md lacks\n{row}"
            );
        }
        for row in rows {
            let first = row.split('|').nth(1).unwrap_or("").trim();
            let name = first
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('`');
            assert!(
                FETCHES.iter().any(|d| d.name == name),
                "docs/configuration.md documents `{name}`, which is not in the fetch table"
            );
        }
    }

    #[test]
    fn names_are_unique_and_described() {
        let mut seen = std::collections::HashSet::new();
        for def in FETCHES {
            for n in std::iter::once(&def.name).chain(def.aliases) {
                assert!(seen.insert(*n), "{n} twice");
            }
            assert!(!def.description.is_empty(), "{}", def.name);
            assert_eq!(find(def.name).map(|d| d.name), Some(def.name));
        }
        assert_eq!(find("sc1_http_req_rate").map(|d| d.name), Some("sc1_<x>"));
        assert_eq!(find("src_port").map(|d| d.name), Some("src_port"));
        assert!(find("sc1_").is_none());
    }
}
