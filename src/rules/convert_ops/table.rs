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

use super::{cast, Arg, ValType, Value};
use crate::rules::sample::Facts;
use crate::stick::track::read_value;
use crate::stick::{Key, KeyType, Read, TableDef};

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

/// `v` as a key of a `key` table: HAProxy's sample cast to the key's
/// type first (an integer is an IPv4 address for a `type ip` table,
/// "42abc" is 42 for an `integer` one), `None` when there is no such
/// form (an IPv6 address for a `type ip` table).
fn key_of(v: Value<'_>, key: KeyType) -> Option<Key> {
    let as_type = match key {
        KeyType::Ip | KeyType::Ipv6 => ValType::Ip,
        KeyType::Integer => ValType::Int,
        KeyType::String { .. } => ValType::Str,
    };
    Key::from_sample(cast(v, as_type)?.as_sample(), key)
}

pub(super) fn c_table<'a>(args: &'a [Arg], v: Value<'a>, facts: &Facts<'_>) -> Option<Value<'a>> {
    let Some(Arg::Table(arg)) = args.first() else {
        return None;
    };
    // A sample with no form in the table's type has no entry to read: no
    // sample, as HAProxy.
    let key = key_of(v, arg.table.key)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn samples_are_cast_to_the_key_type_as_haproxy() {
        let ip: std::net::IpAddr = "0.0.1.2".parse().unwrap();
        assert_eq!(key_of(Value::Int(258), KeyType::Ip), Some(Key::Ip(ip)));
        assert_eq!(
            key_of(Value::Str(Cow::Borrowed(b"42abc")), KeyType::Integer),
            Some(Key::Int(42))
        );
        assert_eq!(
            key_of(Value::Ip(ip), KeyType::String { len: 32 }),
            Some(Key::Str((*b"0.0.1.2").into()))
        );
        assert_eq!(key_of(Value::Ip("::1".parse().unwrap()), KeyType::Ip), None);
        assert_eq!(key_of(Value::Str(Cow::Borrowed(b"x")), KeyType::Ip), None);
    }
}
