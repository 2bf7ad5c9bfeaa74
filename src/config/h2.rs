//! HTTP/2 keys: a bind's `proto = "h2"` (HAProxy `bind ... proto h2`,
//! prior knowledge: h2c on a plain bind) and `[global] tune.h2.*`. ALPN
//! `h2` is read with the other TLS keys (`tls.rs`).

use super::error::{Diagnostics, Reported};
use super::model::{H2Tune, Mode};
use super::reader::TableView;

/// `[global] tune.h2` keys, each with its HAProxy range and a setter:
/// one table, so a new limit is one line here plus its doc.
type Setter = fn(&mut H2Tune, u32);
const H2_TUNE: &[(&str, i64, i64, Setter)] = &[
    // RFC 9113 §6.5.2: any value; 0 would refuse every request.
    ("max-concurrent-streams", 1, 1 << 20, |t, v| {
        t.max_concurrent_streams = v
    }),
    // RFC 9113 §6.9.2: at most 2^31-1.
    ("initial-window-size", 1, (1 << 31) - 1, |t, v| {
        t.initial_window_size = v
    }),
    // RFC 9113 §6.5.2: 2^14 to 2^24-1.
    ("max-frame-size", 1 << 14, (1 << 24) - 1, |t, v| {
        t.max_frame_size = v
    }),
    // HPACK dynamic table the client may use for what it sends us.
    ("header-table-size", 0, 1 << 16, |t, v| {
        t.header_table_size = v
    }),
];

/// Reads `tune.h2 = { ... }` into `tune` (defaults kept for what is not
/// set).
pub(crate) fn read_h2_tune(diag: &mut Diagnostics<'_>, tune: &TableView<'_>, h2: &mut H2Tune) {
    let Some(Ok(table)) = tune.get("h2").map(|n| n.table(diag)) else {
        return;
    };
    let keys: Vec<&str> = H2_TUNE.iter().map(|(k, ..)| *k).collect();
    table.check_keys(diag, &keys);
    for (key, min, max, set) in H2_TUNE {
        if let Some(node) = table.get(key) {
            if let Ok(v) = node.integer_in::<u32>(diag, *min..=*max) {
                set(h2, v.value);
            }
        }
    }
}

/// A bind's `proto`: `Ok(true)` for `"h2"`. HTTP/2 is only spoken in
/// `mode = "http"`.
pub(crate) fn read_bind_proto(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    mode: Option<Mode>,
) -> Result<bool, Reported> {
    let Some(node) = table.get("proto") else {
        return Ok(false);
    };
    let value = node.string(diag)?.value;
    match value.as_str() {
        "h2" if mode == Some(Mode::Http) => Ok(true),
        "h2" => Err(diag.error(
            node.span.as_ref(),
            &node.path,
            "proto = \"h2\" needs mode = \"http\"",
            Some("HTTP/2 is decoded per request; set mode = \"http\" on this frontend".into()),
        )),
        "h1" => Ok(false),
        other => Err(diag.error(
            node.span.as_ref(),
            &node.path,
            format!("unknown bind proto \"{other}\""),
            Some("use \"h2\" (HTTP/2 with prior knowledge) or \"h1\"".into()),
        )),
    }
}
