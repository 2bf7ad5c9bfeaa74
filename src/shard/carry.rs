//! Building a core's next generation from its current one: the new
//! configuration's fresh state, filled with what the old generation knew,
//! matched by name (see `config::diff::IndexMap`).

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::context::CoreContext;
use super::tls::CoreTls;
use crate::config::diff::IndexMap;
use crate::config::Config;

/// The generation that replaces `old` on this core, with `config` and the
/// TLS built from it. `old` is retired: its sessions go on with it.
pub fn next_generation(
    old: &Rc<CoreContext>,
    config: Arc<Config>,
    tls: CoreTls,
) -> Rc<CoreContext> {
    let map = IndexMap::between(&old.config, &config);
    let limits: HashMap<String, Rc<super::limit::ConnLimit>> = old
        .config
        .frontends
        .iter()
        .zip(&old.frontend_limits)
        .map(|(f, l)| (f.name.clone(), Rc::clone(l)))
        .collect();
    let mut next = CoreContext::build(config, &old.shared(), old.generation + 1, Some(&limits));
    next.tls = tls;
    for (from, to) in map.backends.iter().enumerate() {
        let (Some(to), Some(servers)) = (*to, map.servers.get(from)) else {
            continue;
        };
        let mut was = old.backends[from].borrow_mut();
        next.backends[to].borrow_mut().carry_from(
            &mut was,
            servers,
            old.core_index,
            old.core_count,
        );
    }
    {
        // Totals move to the new generation; what is open stays counted by
        // the old one, which keeps counting until its last session ends.
        let mut stats = next.stats.borrow_mut();
        let mut was = old.stats.borrow_mut();
        stats.add_mapped(&was, &map);
        stats.zero_current();
        was.clear(true);
    }
    let next = Rc::new(next);
    // Server connections stay usable where the server kept its name, its
    // address and what its connections start with (PROXY header, TLS,
    // protocol).
    let carried = |b: usize, s: usize| {
        let (nb, ns) = map.server(b, s)?;
        let same_addr =
            old.backends[b].borrow().server_addr(s) == next.backends[nb].borrow().server_addr(ns);
        let was = old.config.backends.get(b)?.servers.get(s)?;
        let now = next.config.backends.get(nb)?.servers.get(ns)?;
        (same_addr && crate::config::diff::same_connections(was, now)).then_some((nb, ns))
    };
    old.http_pool.carry_into(&next.http_pool, carried);
    old.h2_pool.carry_into(&next.h2_pool, carried);
    CoreContext::make_newest(&next);
    old.retire();
    next
}

/// A retired generation's last session ended: what it counted after the
/// switch joins `newest`.
pub fn fold_into(old: &CoreContext, newest: &CoreContext) {
    let map = IndexMap::between(&old.config, &newest.config);
    if let (Ok(mut stats), Ok(was)) = (newest.stats.try_borrow_mut(), old.stats.try_borrow()) {
        stats.add_mapped(&was, &map);
    }
    for (from, to) in map.backends.iter().enumerate() {
        let (Some(to), Some(servers)) = (*to, map.servers.get(from)) else {
            continue;
        };
        let (Some(now), Some(was)) = (newest.backends.get(to), old.backends.get(from)) else {
            continue;
        };
        if let (Ok(mut now), Ok(was)) = (now.try_borrow_mut(), was.try_borrow()) {
            now.fold_counters_from(&was, servers);
        }
    }
}
