//! TEMPORARY STUB (replaced by the backend branch).
use crate::config;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
pub struct BackendRuntime { addrs: Vec<SocketAddr> }
impl BackendRuntime {
    pub fn new(cfg: &config::Backend, _i: usize, _n: usize) -> Self { Self { addrs: cfg.servers.iter().map(|s| s.addr).collect() } }
}
pub struct ServerSlot { idx: usize, addr: SocketAddr }
impl ServerSlot { pub fn server(&self) -> usize { self.idx } pub fn addr(&self) -> SocketAddr { self.addr } }
#[derive(Debug, thiserror::Error)]
pub enum AcquireError { #[error("no server")] NoServer, #[error("queue timeout")] QueueTimeout }
pub async fn acquire(b: &Rc<RefCell<BackendRuntime>>, _c: SocketAddr, avoid: &[usize], _t: Option<Duration>) -> Result<ServerSlot, AcquireError> {
    let b = b.borrow();
    let idx = (0..b.addrs.len()).find(|i| !avoid.contains(i)).ok_or(AcquireError::NoServer)?;
    Ok(ServerSlot { idx, addr: b.addrs[idx] })
}
pub async fn acquire_server(b: &Rc<RefCell<BackendRuntime>>, idx: usize, _t: Option<Duration>) -> Result<ServerSlot, AcquireError> {
    Ok(ServerSlot { idx, addr: b.borrow().addrs[idx] })
}
