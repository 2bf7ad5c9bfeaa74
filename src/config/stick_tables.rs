//! `stick-table` keys of frontends and backends, read before the rules
//! (which name tables) and attached to their sections. A table is named
//! after its section, as in HAProxy.

use std::sync::Arc;

use super::error::Diagnostics;
use super::model::{Backend, Frontend};
use super::reader::TableView;
use super::rules_parse::stick_rules::parse_table;
use super::rules_parse::stick_rules::stick_rule_table;
use crate::stick::{DataType, Stored, TableDef};

/// Names of the tables `stick` lines of backends use.
fn persistence_tables(diag: &mut Diagnostics<'_>, root: &TableView<'_>) -> Vec<String> {
    let mut names = Vec::new();
    let Some(list) = root.get("backend").filter(|l| l.is_array()) else {
        return names;
    };
    for node in list.array(diag).unwrap_or_default() {
        let Some(table) = node.table_quiet() else {
            continue;
        };
        let (Some(name), Some(lines)) = (
            table.get("name").and_then(|n| n.string_quiet()),
            table.get("stick"),
        ) else {
            continue;
        };
        let elements = if lines.is_array() {
            lines.array(diag).unwrap_or_default()
        } else {
            vec![lines]
        };
        for line in elements.iter().filter_map(|e| e.string_quiet()) {
            match stick_rule_table(&line) {
                Some(Some(named)) => names.push(named),
                Some(None) => names.push(name.clone()),
                None => {}
            }
        }
    }
    names
}

/// Reads every section's table; returns them all (for rules naming one).
pub(crate) fn read_tables(
    diag: &mut Diagnostics<'_>,
    root: &TableView<'_>,
    frontends: &mut [Frontend],
    backends: &mut [Backend],
) -> Vec<Arc<TableDef>> {
    let mut all: Vec<Arc<TableDef>> = Vec::new();
    let persistent = persistence_tables(diag, root);
    for (kind, is_frontend) in [("frontend", true), ("backend", false)] {
        let Some(list) = root.get(kind) else { continue };
        if !list.is_array() {
            continue;
        }
        for node in list.array(diag).unwrap_or_default() {
            let Some(table) = node.table_quiet() else {
                continue;
            };
            let Some(name) = table.get("name").and_then(|n| n.string_quiet()) else {
                continue;
            };
            let Some(line_node) = table.get("stick-table") else {
                continue;
            };
            let Ok(text) = line_node.string(diag) else {
                continue;
            };
            let def = match parse_table(&name, &text.value) {
                Ok(mut def) => {
                    if persistent.contains(&name) && def.slot_of(DataType::ServerId).is_none() {
                        def.store.insert(
                            0,
                            Stored {
                                data: DataType::ServerId,
                                period: None,
                            },
                        );
                    }
                    Arc::new(def)
                }
                Err(e) => {
                    super::routing::report_line(diag, &line_node, &text.value, e);
                    continue;
                }
            };
            if all.iter().any(|t| *t.name == *name) {
                diag.error(
                    line_node.span.as_ref(),
                    &line_node.path,
                    format!("a stick table named \"{name}\" is already declared"),
                    Some(
                        "a table takes its section's name: a frontend and a backend of the same name cannot both declare one"
                            .into(),
                    ),
                );
                continue;
            }
            let slot = if is_frontend {
                frontends
                    .iter_mut()
                    .find(|f| f.name == name)
                    .map(|f| &mut f.stick_table)
            } else {
                backends
                    .iter_mut()
                    .find(|b| b.name == name)
                    .map(|b| &mut b.stick_table)
            };
            if let Some(slot) = slot {
                *slot = Some(Arc::clone(&def));
                all.push(def);
            }
        }
    }
    all
}
