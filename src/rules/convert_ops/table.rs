//! The `table_<x>(<table>)` converters: the sample, cast to the table's
//! key type, is looked up (never created) in a stick table and `<x>` of
//! its entry is the output, 0 when there is no entry (HAProxy 2.6;
//! `table_expire` and `table_idle` give their default argument instead,
//! or no sample).
//!
//! The entry may live on another core. A converter cannot wait, so it
//! asks through the connection's tracking state
//! (`crate::stick::Tracked::lookup`) as the `src_*` fetches do: the first
//! evaluation records the lookup and gives no sample, the session
//! resolves it at the owner core, then evaluates the same rule again,
//! which finds the answer.

use std::sync::Arc;

use super::{Arg, Value};
use crate::rules::sample::Facts;
use crate::stick::track::read_value;
use crate::stick::{Key, Read, TableDef};

/// A `table_*` converter's compiled argument.
#[derive(Debug, Clone)]
pub struct TableArg {
    pub table: Arc<TableDef>,
    /// What the converter's name reads (checked at load to be stored).
    pub read: Read,
}

/// The converter named `name`'s read: `table_http_req_rate` →
/// `Data(HttpReqRate)`.
pub fn read_of(name: &str) -> Option<Read> {
    Read::of_table_converter(name.strip_prefix("table_")?)
}

pub(super) fn c_table<'a>(args: &'a [Arg], v: Value<'a>, facts: &Facts<'_>) -> Option<Value<'a>> {
    let Some(Arg::Table(arg)) = args.first() else {
        return None;
    };
    // A sample with no form in the table's type (an IPv6 address for a
    // `type ip` table) has no entry to read: no sample, as HAProxy.
    let key = Key::from_sample(v.as_sample(), arg.table.key)?;
    match facts.conn.stick.lookup(&arg.table, key)? {
        Some(values) => read_value(arg.read, &values).map(Value::Int),
        // No entry: `table_expire` and `table_idle` fail unless given a
        // default; the counters are 0.
        None if arg.read.needs_expire() => match args.get(1) {
            Some(Arg::Int(default)) => Some(Value::Int(*default)),
            _ => None,
        },
        None => Some(Value::Int(0)),
    }
}
