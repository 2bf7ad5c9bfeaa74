//! Leaving root after start-up: `[global] user`, `group`, `chroot` and
//! `setcap` (HAProxy's keywords).
//!
//! When: [`super::run`] lets the cores do everything that needs root —
//! bind listeners (and the stats listener), read certificates, error and
//! map files, connect the health checks — while the main thread has
//! already raised the descriptor limit, opened the log outputs and bound
//! the runtime API sockets. Each core then reports ready and waits. Only
//! when every core is ready does the main thread [`apply`] the plan:
//! `chroot` (and `chdir("/")`), then supplementary groups cleared, group,
//! user. Then the cores are told to go, check their own thread
//! ([`finish_core_thread`]) and only then accept their first connection.
//!
//! Every thread: Linux keeps user and group ids per thread; the raw
//! system calls change the calling thread only. glibc's `setgroups`,
//! `setgid` and `setuid` wrappers (what the `libc` crate calls on the gnu
//! target; musl does the same) apply the call to every thread of the
//! process — nptl's "setxid" broadcast: a signal makes each thread run the
//! same system call, and the process aborts if the results differ. That
//! is what this module relies on; it covers threads percore does not
//! start itself (glommio's helpers, the log writer). Each core then checks
//! its own thread's ids with `getresuid`/`getresgid`/`getgroups`, and
//! tests/privileges.rs reads `/proc/<pid>/task/*/status`.
//!
//! Capabilities are per thread too. A thread loses them all when its user
//! changes from root, unless it set `PR_SET_KEEPCAPS` beforehand: with
//! `setcap`, each core's thread sets it ([`prepare_core_thread`]) before
//! reporting ready and, after the switch, keeps exactly the listed
//! capabilities (`capset`); reloads bind new listeners on the cores'
//! threads. Every other thread, the main one included, keeps none.
//!
//! Checked at start-up ([`Plan::resolve`], also by `--check`), never at a
//! reload: names are looked up before a chroot hides `/etc/passwd`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::{Account, Capability, Process, Written};

/// `CAP_SETGID`, `CAP_SETUID`, `CAP_SYS_CHROOT` of `linux/capability.h`.
const CAP_SETGID: u8 = 6;
const CAP_SETUID: u8 = 7;
const CAP_SYS_CHROOT: u8 = 18;

/// What start-up will do, resolved against the system.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `None`: no `user` configured, the process keeps its ids.
    pub switch: Option<Switch>,
    pub chroot: Option<PathBuf>,
    /// Kept by the cores' threads after the switch (`setcap`).
    pub keep: Vec<Capability>,
    /// Written before anything is bound (`pidfile`, or `-p`).
    pub pidfile: Option<PathBuf>,
    /// Start-up warnings (running as root without `user`, ...).
    pub warnings: Vec<String>,
}

/// The ids to switch to, with the names for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub user: String,
    pub group: String,
}

impl Plan {
    /// Looks the configured user and group up, checks the chroot and
    /// pidfile directories and that this process may switch. Every
    /// problem is returned, each as one line with the setting's
    /// file:line:column (`-p` has none: it is from the command line).
    pub fn resolve(process: &Process, cli_pidfile: Option<&Path>) -> Result<Plan, Vec<String>> {
        let mut errors = Vec::new();
        let caps = Capabilities::of_this_thread().unwrap_or_default();
        let mut plan = Plan {
            switch: resolve_switch(process, &caps, &mut errors),
            chroot: resolve_chroot(process.chroot.as_ref(), &caps, &mut errors),
            ..Plan::default()
        };
        let pidfile = match cli_pidfile {
            Some(path) => Some((path.to_path_buf(), None)),
            None => process
                .pidfile
                .as_ref()
                .map(|w| (w.value.clone(), Some(&w.at))),
        };
        if let Some((path, at)) = pidfile {
            match check_pidfile_dir(&path) {
                Ok(()) => plan.pidfile = Some(path),
                Err(message) => {
                    let hint = "create the directory or choose another path";
                    errors.push(match at {
                        Some(at) => at.error(message, Some(hint.into())).to_string(),
                        None => format!("-p {}: {message} (hint: {hint})", path.display()),
                    });
                }
            }
        }
        if process.user.is_none() && sys::geteuid() == 0 {
            plan.warnings.push(
                "percore runs as root: set global.user (and group) so that it drops its \
                 privileges once its ports are bound"
                    .into(),
            );
        }
        if !process.setcap.is_empty() {
            if plan.switch.is_some() {
                plan.keep = process.setcap.clone();
            } else if process.user.is_none() {
                plan.warnings.push(
                    "global.setcap has no effect without global.user: percore keeps the \
                     capabilities it was started with"
                        .into(),
                );
            }
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

    /// Whether the process changes ids or root at all.
    pub fn drops(&self) -> bool {
        self.switch.is_some() || self.chroot.is_some()
    }
}

/// `user` and `group` looked up; `None` without `user` or on an error
/// (pushed to `errors`).
fn resolve_switch(
    process: &Process,
    caps: &Capabilities,
    errors: &mut Vec<String>,
) -> Option<Switch> {
    let group = process
        .group
        .as_ref()
        .and_then(|g| lookup_group(g).map_err(|e| errors.push(e)).ok());
    let Some(written) = &process.user else {
        if let Some(written) = &process.group {
            errors.push(
                written
                    .at
                    .error(
                        "group without user drops nothing: percore would stay root".into(),
                        Some("set global.user too".into()),
                    )
                    .to_string(),
            );
        }
        return None;
    };
    let (uid, user, primary) = lookup_user(written).map_err(|e| errors.push(e)).ok()?;
    let (gid, group) = match (group, primary) {
        (Some(group), _) => group,
        (None, _) if process.group.is_some() => return None, // its error is listed
        (None, Some(gid)) => (gid, group_name(gid)),
        (None, None) => {
            errors.push(
                written
                    .at
                    .error(
                        format!("user id {uid} has no entry in the user database, so it has no primary group"),
                        Some("set global.group too".into()),
                    )
                    .to_string(),
            );
            return None;
        }
    };
    let current = sys::ids();
    let may_switch = caps.has(CAP_SETUID) && caps.has(CAP_SETGID);
    if current != (uid, gid) && !may_switch {
        errors.push(
            written
                .at
                .error(
                    format!(
                        "percore runs as uid {} gid {} and may not switch to user {user} \
                         (uid {uid}) group {group} (gid {gid}): that needs root",
                        current.0, current.1
                    ),
                    Some(
                        "start percore as root (it drops to user once its ports are bound), \
                         or remove user and group"
                            .into(),
                    ),
                )
                .to_string(),
        );
        return None;
    }
    Some(Switch {
        uid,
        gid,
        user,
        group,
    })
}

/// `chroot` checked: an absolute path to a directory, and the right to
/// chroot.
fn resolve_chroot(
    dir: Option<&Written<PathBuf>>,
    caps: &Capabilities,
    errors: &mut Vec<String>,
) -> Option<PathBuf> {
    let dir = dir?;
    let fail = |message: String, hint: &str| dir.at.error(message, Some(hint.into())).to_string();
    let shown = dir.value.display();
    let problem = match std::fs::metadata(&dir.value) {
        Err(e) => fail(
            format!("chroot directory {shown}: {}", describe(&e)),
            "create it (empty, owned by root) or fix the path",
        ),
        Ok(meta) if !meta.is_dir() => fail(
            format!("chroot {shown} is not a directory"),
            "chroot names an existing, empty directory such as \"/var/empty\"",
        ),
        Ok(_) if !dir.value.is_absolute() => fail(
            format!("chroot directory {shown} is not an absolute path"),
            "write the full path, such as \"/var/empty\"",
        ),
        Ok(_) if !caps.has(CAP_SYS_CHROOT) => fail(
            "chroot needs root (CAP_SYS_CHROOT), which this process does not have".into(),
            "start percore as root, or remove chroot",
        ),
        Ok(_) => return Some(dir.value.clone()),
    };
    errors.push(problem);
    None
}

fn check_pidfile_dir(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "cannot write pidfile {}: {} is not a directory",
            path.display(),
            dir.display()
        )),
        Err(e) => Err(format!(
            "cannot write pidfile {}: directory {}: {}",
            path.display(),
            dir.display(),
            describe(&e)
        )),
    }
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "does not exist".into(),
        _ => e.to_string(),
    }
}

/// Buffer for the `get*_r` lookups; grown on `ERANGE`.
const LOOKUP_BUFFER: usize = 1024;
const LOOKUP_BUFFER_MAX: usize = 1 << 20;

/// (uid, name, primary gid) of a configured user.
fn lookup_user(
    written: &Written<Account>,
) -> Result<(libc::uid_t, String, Option<libc::gid_t>), String> {
    let found = match &written.value {
        Account::Name(name) => passwd_by_name(name),
        Account::Id(id) => passwd_by_id(*id),
    };
    match (found, &written.value) {
        (Ok(Some(entry)), _) => Ok(entry),
        // A numeric id needs no entry (HAProxy's `uid`); it then has no
        // primary group, which `resolve` asks for.
        (Ok(None), Account::Id(id)) => Ok((*id, id.to_string(), None)),
        (Ok(None), Account::Name(name)) => Err(written
            .at
            .error(
                format!("user {name:?} does not exist"),
                Some("create it (e.g. adduser --system --group percore) or use an existing user such as \"nobody\"".into()),
            )
            .to_string()),
        (Err(e), _) => Err(written
            .at
            .error(format!("cannot look the user up: {e}"), None)
            .to_string()),
    }
}

fn lookup_group(written: &Written<Account>) -> Result<(libc::gid_t, String), String> {
    let found = match &written.value {
        Account::Name(name) => group_by_name(name),
        Account::Id(id) => Ok(Some((*id, group_name(*id)))),
    };
    match found {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) => Err(written
            .at
            .error(
                format!("group {:?} does not exist", account_text(&written.value)),
                Some("create it or use an existing group such as \"nogroup\"".into()),
            )
            .to_string()),
        Err(e) => Err(written
            .at
            .error(format!("cannot look the group up: {e}"), None)
            .to_string()),
    }
}

fn account_text(account: &Account) -> String {
    match account {
        Account::Name(n) => n.clone(),
        Account::Id(id) => id.to_string(),
    }
}

fn passwd_by_name(name: &str) -> io::Result<Option<(libc::uid_t, String, Option<libc::gid_t>)>> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    passwd_lookup(&|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the call; `buf` has `len`
        // bytes; getpwnam_r writes only into `pwd`, `buf` and `result`.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), pwd, buf, len, result) }
    })
}

fn passwd_by_id(
    uid: libc::uid_t,
) -> io::Result<Option<(libc::uid_t, String, Option<libc::gid_t>)>> {
    passwd_lookup(&|pwd, buf, len, result| {
        // SAFETY: as in passwd_by_name.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
}

type PasswdCall<'a> = dyn Fn(*mut libc::passwd, *mut libc::c_char, libc::size_t, *mut *mut libc::passwd) -> libc::c_int
    + 'a;

fn passwd_lookup(
    call: &PasswdCall<'_>,
) -> io::Result<Option<(libc::uid_t, String, Option<libc::gid_t>)>> {
    let mut len = LOOKUP_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: a zeroed passwd is a valid value of this plain C struct
        // (null pointers, zero ids); it is only read once filled in.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, buf.as_mut_ptr(), len, &mut result);
        if rc == libc::ERANGE && len < LOOKUP_BUFFER_MAX {
            len *= 4;
            continue;
        }
        if result.is_null() {
            // Not found is rc 0 (or ENOENT and friends on some systems).
            return match rc {
                0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(None),
                other => Err(io::Error::from_raw_os_error(other)),
            };
        }
        // SAFETY: on success pw_name points to a NUL-terminated string in
        // `buf`, which is still alive.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Ok(Some((pwd.pw_uid, name, Some(pwd.pw_gid))));
    }
}

fn group_by_name(name: &str) -> io::Result<Option<(libc::gid_t, String)>> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    let mut len = LOOKUP_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: a zeroed group is a valid value of this plain C struct.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` has `len`
        // bytes.
        let rc = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                len,
                &mut result,
            )
        };
        if rc == libc::ERANGE && len < LOOKUP_BUFFER_MAX {
            len *= 4;
            continue;
        }
        if result.is_null() {
            return match rc {
                0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(None),
                other => Err(io::Error::from_raw_os_error(other)),
            };
        }
        return Ok(Some((grp.gr_gid, name.to_string())));
    }
}

/// The group's name for messages, or its number when it has none.
fn group_name(gid: libc::gid_t) -> String {
    let mut len = LOOKUP_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: as in group_by_name.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), len, &mut result) };
        if rc == libc::ERANGE && len < LOOKUP_BUFFER_MAX {
            len *= 4;
            continue;
        }
        if result.is_null() {
            return gid.to_string();
        }
        // SAFETY: on success gr_name points into `buf`, still alive.
        return unsafe { CStr::from_ptr(grp.gr_name) }
            .to_string_lossy()
            .into_owned();
    }
}

/// Called by each core's thread before it reports ready: with `setcap`,
/// keep the permitted capabilities through the coming switch of user.
pub fn prepare_core_thread(plan: &Plan) -> Result<(), String> {
    if plan.switch.is_none() || plan.keep.is_empty() {
        return Ok(());
    }
    // SAFETY: prctl with integer arguments only; affects this thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(format!(
            "cannot keep capabilities across the switch to user (PR_SET_KEEPCAPS): {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Run by the main thread once every core is ready and before any
/// accepts: chroot, then groups, group and user, for every thread.
pub fn apply(plan: &Plan) -> Result<(), String> {
    if let Some(dir) = &plan.chroot {
        let c_dir = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| format!("chroot {}: path holds a NUL byte", dir.display()))?;
        // SAFETY: c_dir is a valid NUL-terminated path. The root
        // directory is shared by all threads (CLONE_FS).
        if unsafe { libc::chroot(c_dir.as_ptr()) } != 0 {
            return Err(format!(
                "cannot chroot to {}: {}",
                dir.display(),
                io::Error::last_os_error()
            ));
        }
        // Without it the working directory would stay outside the new root.
        std::env::set_current_dir("/")
            .map_err(|e| format!("cannot chdir to / inside chroot {}: {e}", dir.display()))?;
    }
    let Some(switch) = &plan.switch else {
        return Ok(());
    };
    let failed = |what: &str| {
        format!(
            "cannot {what} (user {} uid {}, group {} gid {}): {}",
            switch.user,
            switch.uid,
            switch.group,
            switch.gid,
            io::Error::last_os_error()
        )
    };
    if sys::ids() == (switch.uid, switch.gid) && sys::geteuid() != 0 {
        // Already that user (started without root): nothing to change.
        return Ok(());
    }
    // SAFETY (the three calls): plain system call wrappers with no
    // pointer but the null one for an empty group list. glibc applies
    // each to every thread of the process (see the module doc).
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(failed("clear the supplementary groups"));
    }
    if unsafe { libc::setgid(switch.gid) } != 0 {
        return Err(failed("switch group"));
    }
    if unsafe { libc::setuid(switch.uid) } != 0 {
        return Err(failed("switch user"));
    }
    check_this_thread(switch)
}

/// Run by each core's thread after [`apply`]: checks the thread's ids
/// and keeps exactly the `setcap` capabilities (none without it).
pub fn finish_core_thread(plan: &Plan) -> Result<(), String> {
    let Some(switch) = &plan.switch else {
        return Ok(());
    };
    check_this_thread(switch)?;
    let keep = plan
        .keep
        .iter()
        .fold(0u64, |mask, cap| mask | 1u64 << cap.0);
    let caps = Capabilities {
        effective: keep,
        permitted: keep,
        inheritable: 0,
    };
    if !plan.keep.is_empty() {
        caps.set_this_thread()
            .map_err(|e| format!("cannot keep capabilities {keep:#x} (setcap): {e}"))?;
    }
    let now = Capabilities::of_this_thread()
        .map_err(|e| format!("cannot read this thread's capabilities: {e}"))?;
    if now.permitted != keep || now.effective != keep {
        return Err(format!(
            "capabilities after the switch are {:#x} (permitted), {:#x} (effective), not {keep:#x}",
            now.permitted, now.effective
        ));
    }
    Ok(())
}

/// The calling thread's real, effective and saved ids and supplementary
/// groups must all be the target's.
fn check_this_thread(switch: &Switch) -> Result<(), String> {
    let (uids, gids, groups) =
        sys::this_thread_ids().map_err(|e| format!("cannot read this thread's ids: {e}"))?;
    if uids != [switch.uid; 3] || gids != [switch.gid; 3] || !groups.is_empty() {
        return Err(format!(
            "thread still has uids {uids:?}, gids {gids:?}, groups {groups:?} after the switch \
             to uid {} gid {}",
            switch.uid, switch.gid
        ));
    }
    Ok(())
}

/// A thread's capability sets, as 64-bit masks (bit n = capability n).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Capabilities {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// `struct __user_cap_header_struct` of `linux/capability.h`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two (64 bits).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

impl Capabilities {
    fn has(&self, cap: u8) -> bool {
        self.effective & (1u64 << cap) != 0
    }

    fn of_this_thread() -> io::Result<Capabilities> {
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget reads the header and writes two CapData, the
        // layout version 3 defines; pid 0 is the calling thread.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
        Ok(Capabilities {
            effective: join(data[0].effective, data[1].effective),
            permitted: join(data[0].permitted, data[1].permitted),
            inheritable: join(data[0].inheritable, data[1].inheritable),
        })
    }

    fn set_this_thread(&self) -> io::Result<()> {
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let split = |mask: u64| (mask as u32, (mask >> 32) as u32);
        let (e, p, i) = (
            split(self.effective),
            split(self.permitted),
            split(self.inheritable),
        );
        let data = [
            CapData {
                effective: e.0,
                permitted: p.0,
                inheritable: i.0,
            },
            CapData {
                effective: e.1,
                permitted: p.1,
                inheritable: i.1,
            },
        ];
        // SAFETY: capset reads the header and two CapData (version 3);
        // pid 0 is the calling thread, the only one capset may change.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Id queries with no pointer handed out, kept apart so the rest reads
/// without `unsafe`.
mod sys {
    use std::io;

    pub fn geteuid() -> libc::uid_t {
        // SAFETY: no arguments, cannot fail.
        unsafe { libc::geteuid() }
    }

    /// (real uid, real gid) of the calling thread.
    pub fn ids() -> (libc::uid_t, libc::gid_t) {
        // SAFETY: no arguments, cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }

    /// Real, effective, saved uids and gids, and the supplementary groups
    /// of the calling thread (these system calls read the caller's own
    /// credentials, not a process-wide copy).
    pub fn this_thread_ids() -> io::Result<([libc::uid_t; 3], [libc::gid_t; 3], Vec<libc::gid_t>)> {
        let mut uids = [0; 3];
        let mut gids = [0; 3];
        // SAFETY: three valid out-pointers each.
        let rc = unsafe {
            libc::getresuid(&mut uids[0], &mut uids[1], &mut uids[2])
                | libc::getresgid(&mut gids[0], &mut gids[1], &mut gids[2])
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a size of 0 asks for the count only; nothing is written.
        let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        let mut groups = vec![0; usize::try_from(count).map_err(|_| io::Error::last_os_error())?];
        // SAFETY: `groups` has room for `count` ids.
        let got = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
        groups.truncate(usize::try_from(got).map_err(|_| io::Error::last_os_error())?);
        Ok((uids, gids, groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_of_this_thread_are_readable() {
        let caps = Capabilities::of_this_thread().expect("capget");
        assert_eq!(caps.effective & !caps.permitted, 0);
    }

    #[test]
    fn check_pidfile_dir_names_the_missing_directory() {
        let err = check_pidfile_dir(Path::new("/nonexistent-percore-dir/p.pid")).unwrap_err();
        assert!(
            err.contains("/nonexistent-percore-dir: does not exist"),
            "{err}"
        );
        assert!(check_pidfile_dir(Path::new("p.pid")).is_ok());
    }
}
