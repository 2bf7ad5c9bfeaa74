//! `data.<type> <op> <value>` filters of `show table` / `clear table`.

use super::def::DataType;
use super::table::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
}

impl Op {
    pub fn by_name(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "le" => Op::Le,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "gt" => Op::Gt,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub data: DataType,
    pub op: Op,
    pub value: i64,
}

impl Filter {
    /// Whether an entry with `values` passes (a type the table does not
    /// store passes nothing).
    pub fn matches(&self, values: &Snapshot) -> bool {
        let Some(v) = values.get(self.data) else {
            return false;
        };
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Le => v <= self.value,
            Op::Ge => v >= self.value,
            Op::Lt => v < self.value,
            Op::Gt => v > self.value,
        }
    }
}
