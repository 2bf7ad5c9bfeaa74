//! `show servers state [<backend>]` in HAProxy's format version 1 (what
//! `server-state-file` holds), one line per server, from the merged
//! snapshot. Fields percore has no concept of (agents, FQDNs, SRV
//! records, forced ids) carry HAProxy's values for "none".

use std::fmt::Write;

use crate::config::Config;
use crate::stats::{ServerState, ServerStatus, Snapshot};

const HEADER: &str = "# be_id be_name srv_id srv_name srv_addr srv_op_state \
    srv_admin_state srv_uweight srv_iweight srv_time_since_last_change \
    srv_check_status srv_check_result srv_check_health srv_check_state \
    srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord \
    srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port";

/// HAProxy's `srv_op_state`: SRV_ST_STOPPED and SRV_ST_RUNNING.
const OP_STOPPED: u8 = 0;
const OP_RUNNING: u8 = 2;
/// HAProxy's `srv_admin_state` bits.
const ADMF_FMAINT: u8 = 0x01;
const ADMF_CMAINT: u8 = 0x04;
const ADMF_FDRAIN: u8 = 0x08;
/// HAProxy's `CHK_ST_*` bits and statuses for a server with no check.
const CHK_ST_CONFIGURED: u8 = 0x02;
const CHK_ST_ENABLED: u8 = 0x04;
const CHK_ST_PAUSED: u8 = 0x08;
const HCHK_STATUS_INI: u8 = 1;

/// `backends`: which backends to list (all, or the one asked for).
pub fn render(config: &Config, snapshot: &Snapshot, backends: &[usize]) -> String {
    let mut out = format!("1\n{HEADER}\n");
    let iid_base = config.frontends.len();
    for &b in backends {
        let (Some(be), Some(state)) = (config.backends.get(b), snapshot.backends.get(b)) else {
            continue;
        };
        for (i, (srv, st)) in be.servers.iter().zip(&state.servers).enumerate() {
            let addr = st.admin.addr.unwrap_or(srv.addr);
            let (check_status, check_result, check_health, check_state) = match &srv.check {
                None => (HCHK_STATUS_INI, 0, st.admin.unchecked_health, 0),
                Some(cfg) => {
                    let mut flags = CHK_ST_CONFIGURED;
                    if !st.admin.checks_off {
                        flags |= CHK_ST_ENABLED;
                    }
                    if st.status() == ServerStatus::Maint {
                        flags |= CHK_ST_PAUSED;
                    }
                    match st.admin.check {
                        Some(c) => (c.status, c.result, c.health, flags),
                        None => (HCHK_STATUS_INI, 0, cfg.rise, flags),
                    }
                }
            };
            let check_port = srv
                .check
                .as_ref()
                .filter(|c| c.addr.port() != srv.addr.port())
                .map_or(0, |c| c.addr.port());
            let check_addr = srv
                .check
                .as_ref()
                .filter(|c| c.addr.ip() != srv.addr.ip())
                .map_or_else(|| "-".to_string(), |c| c.addr.ip().to_string());
            let _ = writeln!(
                out,
                "{} {} {} {} {} {} {} {} {} {} {check_status} {check_result} {check_health} \
                 {check_state} 0 0 0 - {} - {} {check_port} {check_addr} - 0",
                iid_base + b + 1,
                be.name,
                i + 1,
                srv.name,
                addr.ip(),
                op_state(st),
                admin_state(st),
                st.weight,
                st.admin.initial_weight,
                st.since_change.as_secs(),
                addr.port(),
                u8::from(srv.ssl.is_some()),
            );
        }
    }
    out
}

fn op_state(st: &ServerState) -> u8 {
    match st.status() {
        ServerStatus::Up | ServerStatus::Drain | ServerStatus::Partial { .. } => OP_RUNNING,
        ServerStatus::Down | ServerStatus::Maint => OP_STOPPED,
    }
}

fn admin_state(st: &ServerState) -> u8 {
    let mut bits = 0;
    match st.status() {
        ServerStatus::Maint if st.admin.config_maint => bits |= ADMF_FMAINT | ADMF_CMAINT,
        ServerStatus::Maint => bits |= ADMF_FMAINT,
        ServerStatus::Drain => bits |= ADMF_FDRAIN,
        _ => {}
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::render::tests::sample;

    #[test]
    fn one_line_per_server_in_haproxys_columns() {
        let (config, mut snapshot, _) = sample();
        for server in &mut snapshot.backends[0].servers {
            server.admin.unchecked_health = 2;
        }
        snapshot.backends[0].servers[0].admin.initial_weight = 1;
        snapshot.backends[0].servers[1].admin.initial_weight = 1;
        snapshot.backends[0].servers[1].admin.drain_cores = 1;
        snapshot.backends[0].servers[1].up_cores = 1;
        let text = render(&config, &snapshot, &[0]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "1");
        assert_eq!(lines[1], HEADER);
        assert_eq!(
            lines[2],
            "2 be 1 s1 127.0.0.1 2 0 1 1 83 1 0 2 0 0 0 0 - 2 - 0 0 - - 0"
        );
        assert_eq!(
            lines[3],
            "2 be 2 s2 127.0.0.1 2 8 1 1 5 1 0 2 0 0 0 0 - 3 - 0 0 - - 0"
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(HEADER.split(' ').count() - 1, lines[2].split(' ').count());
    }
}
