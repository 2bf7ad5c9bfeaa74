//! One core's TLS: an acceptor per TLS bind and a connector per TLS
//! server, each from its own rustls configuration (see `crate::tls`).

use crate::net::Conn;
use futures_rustls::{TlsAcceptor, TlsConnector};
use std::time::Duration;

use crate::config::{Config, ServerProto};
use crate::net::Stream;
use crate::tls::handshake::{self, HandshakeError};
use std::sync::Arc;

pub struct CoreTls {
    /// `[frontend][bind]`; `None` for plain binds.
    binds: Vec<Vec<Option<TlsAcceptor>>>,
    /// `[backend][server]`; `None` for plain servers.
    servers: Vec<Vec<Option<TlsConnector>>>,
}

impl CoreTls {
    /// Builds this core's configurations. The loader built each once
    /// already, so an error here is unexpected; it stops the core's start.
    pub fn new(config: &Config) -> Result<Self, String> {
        let mut binds = Vec::new();
        for fe in &config.frontends {
            let mut per_bind = Vec::new();
            for (addr, tls) in fe.binds.iter().zip(&fe.bind_tls) {
                per_bind.push(match tls {
                    None => None,
                    Some(tls) => Some(TlsAcceptor::from(tls.server_config().map_err(|e| {
                        format!("frontend \"{}\": bind {addr}: TLS: {e}", fe.name)
                    })?)),
                });
            }
            binds.push(per_bind);
        }
        let mut servers = Vec::new();
        for be in &config.backends {
            let mut per_server = Vec::new();
            for server in &be.servers {
                per_server.push(match &server.ssl {
                    None => None,
                    Some(tls) => {
                        let mut config = tls.client_config().map_err(|e| {
                            format!(
                                "backend \"{}\": server \"{}\": TLS: {e}",
                                be.name, server.name
                            )
                        })?;
                        // `proto = "h2"`: the server is told by ALPN (health
                        // checks make their own connections, without TLS).
                        if server.proto == ServerProto::H2 {
                            let mut with_alpn = (*config).clone();
                            with_alpn.alpn_protocols = vec![b"h2".to_vec()];
                            config = Arc::new(with_alpn);
                        }
                        Some(TlsConnector::from(config))
                    }
                });
            }
            servers.push(per_server);
        }
        Ok(CoreTls { binds, servers })
    }

    /// No TLS anywhere (for contexts built without a configuration check).
    pub fn none(config: &Config) -> Self {
        CoreTls {
            binds: config
                .frontends
                .iter()
                .map(|f| vec![None; f.binds.len()])
                .collect(),
            servers: config
                .backends
                .iter()
                .map(|b| vec![None; b.servers.len()])
                .collect(),
        }
    }

    pub fn acceptor(&self, frontend: usize, bind: usize) -> Option<&TlsAcceptor> {
        self.binds.get(frontend)?.get(bind)?.as_ref()
    }

    /// Terminates TLS on an accepted connection if its bind has TLS.
    pub async fn accept(
        &self,
        frontend: usize,
        bind: usize,
        stream: Conn,
        limit: Option<Duration>,
    ) -> Result<Stream, HandshakeError> {
        match self.acceptor(frontend, bind) {
            None => Ok(Stream::Plain(stream)),
            Some(acceptor) => {
                let tls = handshake::accept(acceptor, stream, limit).await?;
                Ok(Stream::Tls(Box::new(tls.into())))
            }
        }
    }

    /// Starts TLS on a new server connection if the server has `ssl`.
    pub async fn connect(
        &self,
        config: &Config,
        backend: usize,
        server: usize,
        stream: Conn,
        limit: Option<Duration>,
    ) -> Result<Stream, HandshakeError> {
        let connector = self
            .servers
            .get(backend)
            .and_then(|s| s.get(server))
            .and_then(Option::as_ref);
        let settings = config.backends[backend].servers[server].ssl.as_ref();
        match (connector, settings) {
            (Some(connector), Some(settings)) => {
                let name = settings.server_name(config.backends[backend].servers[server].addr);
                let tls = handshake::connect(connector, name, stream, limit).await?;
                Ok(Stream::Tls(Box::new(tls.into())))
            }
            _ => Ok(Stream::Plain(stream)),
        }
    }
}
