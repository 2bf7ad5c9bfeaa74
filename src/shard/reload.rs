//! Applying a reload on one core, in two steps run on every core in turn
//! by the runtime API's core mesh: [`prepare`] does everything that can
//! fail (TLS contexts, binding the addresses this core does not listen on
//! yet) and keeps the result; [`commit`] switches to the new generation
//! and cannot fail; [`abort`] drops a prepared reload another core could
//! not prepare. Nothing is visible to traffic before `commit`.

use std::net::SocketAddr;
use std::sync::Arc;

use super::tls::CoreTls;
use super::Shard;
use crate::config::{Config, Mode};
use crate::net::listener::{bind_reuseport_socket, delay_request_ack};
use crate::net::Acceptor;

/// A reload prepared on one core.
pub struct Prepared {
    generation: u64,
    config: Arc<Config>,
    tls: CoreTls,
    /// Listening sockets for addresses new in this configuration.
    opened: Vec<(SocketAddr, Acceptor)>,
}

/// What the runtime does after a commit: start accepting on `opened`,
/// stop accepting on `closed`.
pub struct Switched {
    pub opened: Vec<(SocketAddr, Acceptor)>,
    pub closed: Vec<SocketAddr>,
}

/// Prepares generation `generation` with `config` on this core. `Err` is
/// the one line saying what failed (a port in use, a TLS context refused).
pub fn prepare(shard: &Shard, generation: u64, config: Arc<Config>) -> Result<(), String> {
    let current = shard.current();
    if generation != current.generation + 1 {
        return Err(format!(
            "core {}: reload {generation} does not follow generation {}",
            current.core_index, current.generation
        ));
    }
    let tls = CoreTls::new(&config)?;
    let mut opened = Vec::new();
    for fe in &config.frontends {
        for addr in &fe.binds {
            if current.bind_at(*addr).is_some() {
                continue;
            }
            let bound = bind_reuseport_socket(*addr, fe.backlog).and_then(|sock| {
                if fe.mode == Mode::Http {
                    delay_request_ack(&sock)?;
                }
                Acceptor::new(sock)
            });
            match bound {
                Ok(listener) => opened.push((*addr, listener)),
                Err(e) => {
                    return Err(format!(
                        "frontend \"{}\": cannot bind {addr}: {}",
                        fe.name,
                        crate::net::listener::describe_bind_error(&e)
                    ))
                }
            }
        }
    }
    *shard.prepared.borrow_mut() = Some(Prepared {
        generation,
        config,
        tls,
        opened,
    });
    Ok(())
}

/// Switches this core to the prepared generation `generation`; false if
/// nothing (or another generation) was prepared. What the listeners must
/// do is left in [`Shard::take_switched`] for the runtime, which is woken
/// by the old generation's `retired` event.
pub fn commit(shard: &Shard, generation: u64) -> bool {
    let Some(prepared) = shard.prepared.borrow_mut().take() else {
        return false;
    };
    if prepared.generation != generation {
        return false;
    }
    let current = shard.current();
    let next = super::carry::next_generation(&current, prepared.config, prepared.tls);
    let closed = current
        .bind_addrs()
        .filter(|a| next.bind_at(*a).is_none())
        .collect();
    shard.switched.borrow_mut().push(Switched {
        opened: prepared.opened,
        closed,
    });
    shard.switch_to(next);
    true
}

/// Drops what `prepare` made (closing the sockets it bound).
pub fn abort(shard: &Shard, generation: u64) {
    let mut prepared = shard.prepared.borrow_mut();
    if prepared
        .as_ref()
        .is_some_and(|p| p.generation == generation)
    {
        *prepared = None;
    }
}
