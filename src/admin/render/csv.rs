//! `<uri>;csv` and the runtime API's `show stat`: HAProxy's stats CSV,
//! columns from [`FIELDS`]. The first 77 columns are HAProxy's, in
//! HAProxy's order (`pxname` .. `algo`), so scripts that read columns by
//! position or by name keep working; then `ssl_failed_handshake` (the name
//! of HAProxy's SSL stats module field, frontends only). Fields percore
//! does not have (health checks, rates, compression, agents, cookies) are
//! empty. `qtime`/`ctime`/`rtime`/`ttime` are averages in ms over the
//! whole run (HAProxy averages the last 1024 sessions).

use super::fields::{rows, Row, FIELDS};
use super::View;

/// The CSV columns: every field with a HAProxy position, in table order.
pub fn columns() -> impl Iterator<Item = &'static super::fields::Field> {
    FIELDS.iter().filter(|f| f.pos.is_some())
}

/// The `# pxname,svname,...,` header line.
pub fn header(out: &mut String) {
    out.push_str("# ");
    for (i, f) in columns().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(f.name);
    }
    out.push_str(",\n");
}

/// One row, every column, empty where the row has no value.
pub fn row(out: &mut String, r: &Row<'_>) {
    for (i, f) in columns().enumerate() {
        if i > 0 {
            out.push(',');
        }
        r.get(f).write(out);
    }
    out.push_str(",\n");
}

pub fn render(v: &View<'_>) -> String {
    let mut out = String::with_capacity(4096);
    header(&mut out);
    for r in rows(v) {
        row(&mut out, &r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn columns_are_haproxys_and_rows_line_up() {
        let (config, snapshot, info) = sample();
        let text = render(&View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        });
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"));
        let names: Vec<&str> = header[2..].trim_end_matches(',').split(',').collect();
        assert_eq!(names[61], "ttime");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 4, "frontend, two servers, backend");
        for r in &rows {
            assert_eq!(r.len(), names.len() + 1, "{r:?}");
        }
        assert_eq!(names.len(), 84);
        assert_eq!(names[81], "dcon");
        assert_eq!(names[82], "dses");
        let col = |row: &Vec<&str>, name: &str| {
            row[names.iter().position(|c| *c == name).unwrap()].to_string()
        };
        assert_eq!(col(&rows[0], "svname"), "FRONTEND");
        assert_eq!(col(&rows[0], "bin"), "1234");
        assert_eq!(col(&rows[1], "status"), "UP");
        assert_eq!(col(&rows[2], "status"), "DOWN");
        assert_eq!(col(&rows[2], "bck"), "1");
        assert_eq!(col(&rows[3], "svname"), "BACKEND");
        assert_eq!(col(&rows[3], "act"), "1");
        assert_eq!(col(&rows[3], "qmax"), "2");
        assert_eq!(col(&rows[3], "algo"), "roundrobin");
    }
}
