//! Typed, located access to the parsed TOML document.
//!
//! The loader walks the document by hand instead of deriving `Deserialize`:
//! serde stops at the first unknown key or type mismatch, while users fixing
//! a file want every problem at once, each with its key path and position.

use toml_edit::{Item, Table, TableLike, Value};

use super::error::{did_you_mean, Diagnostics, Reported, Span};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<T> {
    pub value: T,
    pub span: Option<Span>,
}

/// What a key may hold, as the document has it.
#[derive(Clone, Copy)]
enum NodeRef<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

/// One value in the document with its key path and position.
#[derive(Clone)]
pub(crate) struct Node<'a> {
    node: NodeRef<'a>,
    pub path: String,
    pub span: Option<Span>,
}

/// A table (header table, dotted-key table or inline table) being read.
pub(crate) struct TableView<'a> {
    table: &'a dyn TableLike,
    pub path: String,
    pub span: Option<Span>,
}

fn join(path: &str, key: &str) -> String {
    let key = if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> TableView<'a> {
    pub(crate) fn root(table: &'a Table) -> Self {
        TableView {
            table,
            path: String::new(),
            span: table.span(),
        }
    }

    /// Reports every key not in `allowed`, with the valid keys as the hint.
    pub(crate) fn check_keys(&self, diag: &mut Diagnostics<'_>, allowed: &[&str]) {
        for (key, _) in self.table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let span = self.table.get_key_value(key).and_then(|(k, _)| k.span());
            let valid = allowed.join(", ");
            let hint = match did_you_mean(key, allowed) {
                Some(near) => format!("did you mean `{near}`? valid keys here: {valid}"),
                None => format!("valid keys here: {valid}"),
            };
            let what = if self.path.is_empty() {
                "top level".to_string()
            } else {
                format!("`{}`", self.path)
            };
            diag.error(
                span.as_ref(),
                &join(&self.path, key),
                format!("unknown key `{key}` in {what}"),
                Some(hint),
            );
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Node<'a>> {
        let (k, item) = self.table.get_key_value(key)?;
        if item.is_none() {
            return None;
        }
        Some(Node {
            node: NodeRef::Item(item),
            path: join(&self.path, key),
            // Implicit tables (from dotted keys) have no span of their own.
            span: item.span().or_else(|| k.span()),
        })
    }

    /// Every key with its value, in document order (for tables whose keys
    /// are data, such as `errorfile = { 503 = "..." }`).
    pub(crate) fn entries(&self) -> Vec<(String, Node<'a>)> {
        self.table
            .iter()
            .filter_map(|(key, _)| Some((key.to_string(), self.get(key)?)))
            .collect()
    }

    /// Replaces the path prefix, e.g. `frontend[0]` by `frontend "web"` once
    /// the name is known.
    pub(crate) fn rename(&mut self, path: String) {
        self.path = path;
    }
}

impl<'a> Node<'a> {
    fn value(&self) -> Option<&'a Value> {
        match self.node {
            NodeRef::Item(Item::Value(v)) | NodeRef::Value(v) => Some(v),
            _ => None,
        }
    }

    fn table_like(&self) -> Option<&'a dyn TableLike> {
        match self.node {
            NodeRef::Item(Item::Table(t)) | NodeRef::Table(t) => Some(t),
            NodeRef::Item(Item::Value(Value::InlineTable(t)))
            | NodeRef::Value(Value::InlineTable(t)) => Some(t),
            _ => None,
        }
    }

    /// How the value reads in an error message: `string "abc"`, `integer 5`.
    pub(crate) fn describe(&self) -> String {
        match (self.node, self.value()) {
            (_, Some(Value::InlineTable(_))) | (NodeRef::Table(_), _) => "a table".into(),
            (NodeRef::Item(Item::Table(_)), _) => "a table".into(),
            (NodeRef::Item(Item::ArrayOfTables(_)), _) => "an array of tables".into(),
            (_, Some(Value::Array(_))) => "an array".into(),
            (_, Some(v)) => {
                let text = v.to_string();
                let text = text.trim();
                let shown: String = text.chars().take(60).collect();
                format!("{} {shown}", v.type_name())
            }
            _ => "nothing".into(),
        }
    }

    fn type_error(&self, diag: &mut Diagnostics<'_>, expected: &str) -> Reported {
        diag.error(
            self.span.as_ref(),
            &self.path,
            format!("expected {expected}, found {}", self.describe()),
            None,
        )
    }

    pub(crate) fn is_string(&self) -> bool {
        matches!(self.value(), Some(Value::String(_)))
    }

    pub(crate) fn is_integer(&self) -> bool {
        matches!(self.value(), Some(Value::Integer(_)))
    }

    pub(crate) fn is_array(&self) -> bool {
        matches!(self.value(), Some(Value::Array(_)))
            || matches!(self.node, NodeRef::Item(Item::ArrayOfTables(_)))
    }

    pub(crate) fn is_table(&self) -> bool {
        self.table_like().is_some()
    }

    /// The boolean, if the value is one (nothing reported otherwise).
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.value() {
            Some(Value::Boolean(b)) => Some(*b.value()),
            _ => None,
        }
    }

    pub(crate) fn string(&self, diag: &mut Diagnostics<'_>) -> Result<Located<String>, Reported> {
        match self.value() {
            Some(Value::String(s)) => Ok(self.located(s.value().clone())),
            _ => Err(self.type_error(diag, "a string")),
        }
    }

    pub(crate) fn integer(&self, diag: &mut Diagnostics<'_>) -> Result<Located<i64>, Reported> {
        match self.value() {
            Some(Value::Integer(i)) => Ok(self.located(*i.value())),
            _ => Err(self.type_error(diag, "an integer")),
        }
    }

    pub(crate) fn bool(&self, diag: &mut Diagnostics<'_>) -> Result<Located<bool>, Reported> {
        match self.value() {
            Some(Value::Boolean(b)) => Ok(self.located(*b.value())),
            _ => Err(self.type_error(diag, "true or false")),
        }
    }

    /// `redispatch`: `true` is HAProxy's bare `option redispatch` (interval
    /// -1: the last retry), `false` turns it off, an integer is the
    /// interval of `option redispatch <interval>` (0 = off).
    pub(crate) fn redispatch(
        &self,
        diag: &mut Diagnostics<'_>,
    ) -> Result<Located<Option<i32>>, Reported> {
        match self.value() {
            Some(Value::Boolean(b)) => Ok(self.located(b.value().then_some(-1))),
            Some(Value::Integer(_)) => {
                let n = self.integer_in::<i32>(diag, -1000..=1000)?;
                Ok(self.located((n.value != 0).then_some(n.value)))
            }
            _ => Err(self.type_error(diag, "true, false or a retry interval (e.g. 1 or -1)")),
        }
    }

    /// An integer within `range`, reported with `what` if outside it.
    pub(crate) fn integer_in<T>(
        &self,
        diag: &mut Diagnostics<'_>,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Located<T>, Reported>
    where
        T: TryFrom<i64>,
    {
        let n = self.integer(diag)?;
        if range.contains(&n.value) {
            if let Ok(v) = T::try_from(n.value) {
                return Ok(self.located(v));
            }
        }
        Err(diag.error(
            self.span.as_ref(),
            &self.path,
            format!(
                "{} is out of range: must be between {} and {}",
                n.value,
                range.start(),
                range.end()
            ),
            None,
        ))
    }

    pub(crate) fn table(&self, diag: &mut Diagnostics<'_>) -> Result<TableView<'a>, Reported> {
        match self.table_like() {
            Some(table) => Ok(TableView {
                table,
                path: self.path.clone(),
                span: self.span.clone(),
            }),
            None => Err(self.type_error(diag, "a table")),
        }
    }

    /// The table, if the value is one (nothing reported otherwise: for a
    /// second pass over sections already checked).
    pub(crate) fn table_quiet(&self) -> Option<TableView<'a>> {
        self.table_like().map(|table| TableView {
            table,
            path: self.path.clone(),
            span: self.span.clone(),
        })
    }

    /// The string, if the value is one (nothing reported otherwise).
    pub(crate) fn string_quiet(&self) -> Option<String> {
        match self.value() {
            Some(Value::String(s)) => Some(s.value().clone()),
            _ => None,
        }
    }

    /// Elements of an array or of an array of tables (`[[frontend]]`).
    pub(crate) fn array(&self, diag: &mut Diagnostics<'_>) -> Result<Vec<Node<'a>>, Reported> {
        match (self.node, self.value()) {
            (NodeRef::Item(Item::ArrayOfTables(tables)), _) => Ok(tables
                .iter()
                .enumerate()
                .map(|(i, t)| Node {
                    node: NodeRef::Table(t),
                    path: format!("{}[{i}]", self.path),
                    span: t.span().or_else(|| self.span.clone()),
                })
                .collect()),
            (_, Some(Value::Array(values))) => Ok(values
                .iter()
                .enumerate()
                .map(|(i, v)| Node {
                    node: NodeRef::Value(v),
                    path: format!("{}[{i}]", self.path),
                    span: v.span().or_else(|| self.span.clone()),
                })
                .collect()),
            _ => Err(self.type_error(diag, "an array")),
        }
    }

    pub(crate) fn located<T>(&self, value: T) -> Located<T> {
        Located {
            value,
            span: self.span.clone(),
        }
    }
}
