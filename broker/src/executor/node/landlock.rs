//! Landlock, by raw system calls (no crate: three syscalls and four structs).
//!
//! The Node child gets one ruleset: every filesystem right the kernel's ABI knows is handled,
//! and only reading (and, for the program and its loader, executing) a short list of files is
//! granted back: the node binary, its libraries, `ld.so.cache` and `openssl.cnf`. From ABI 4
//! on, binding and connecting TCP are handled with no rule, so both are denied; from ABI 6 on,
//! the domain is scoped, so the child can neither signal nor connect to an abstract unix
//! socket of any process outside its own domain (every child creates its own domain, so other
//! tenants are outside).
//!
//! `restrict_self` needs `PR_SET_NO_NEW_PRIVS` (set by the launcher first) and applies to the
//! calling thread and whatever it executes; the launcher is single-threaded when it calls it.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const SYS_CREATE_RULESET: libc::c_long = 444;
const SYS_ADD_RULE: libc::c_long = 445;
const SYS_RESTRICT_SELF: libc::c_long = 446;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

pub const ACCESS_FS_EXECUTE: u64 = 1 << 0;
pub const ACCESS_FS_READ_FILE: u64 = 1 << 2;
/// Rights per ABI version: 1 has bits 0-12, 2 adds REFER (13), 3 TRUNCATE (14), 5 IOCTL_DEV (15).
fn fs_rights(abi: u32) -> u64 {
    let mut rights = (1u64 << 13) - 1;
    if abi >= 2 {
        rights |= 1 << 13;
    }
    if abi >= 3 {
        rights |= 1 << 14;
    }
    if abi >= 5 {
        rights |= 1 << 15;
    }
    rights
}

const ACCESS_NET_BIND_TCP: u64 = 1 << 0;
const ACCESS_NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// The first ABI with the TCP rules, and the first with signal and abstract-socket scoping.
pub const ABI_TCP: u32 = 4;
pub const ABI_SCOPE: u32 = 6;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The kernel's Landlock ABI version, or the error that says why there is none (ENOSYS: not
/// built in; EOPNOTSUPP: built in but not enabled at boot).
pub fn abi() -> io::Result<u32> {
    // SAFETY: the documented version query: NULL attribute, size 0.
    let rc = unsafe {
        libc::syscall(
            SYS_CREATE_RULESET,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as u32)
}

/// A file the child may read, and whether it may also execute it.
pub struct Grant<'a> {
    pub path: &'a Path,
    pub execute: bool,
}

/// What [`restrict_self`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub abi: u32,
    pub tcp: bool,
    pub scoped: bool,
}

/// Restricts this thread (and what it executes) to reading `grants`, with TCP denied and the
/// domain scoped where the ABI allows.
pub fn restrict_self(grants: &[Grant<'_>]) -> Result<Applied, String> {
    let abi = abi().map_err(|e| format!("Landlock unavailable: {e}"))?;
    let attr = RulesetAttr {
        handled_access_fs: fs_rights(abi),
        handled_access_net: if abi >= ABI_TCP {
            ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP
        } else {
            0
        },
        scoped: if abi >= ABI_SCOPE {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        },
    };
    // Older kernels know a shorter struct: pass only the fields they understand.
    let size = match abi {
        1..=3 => 8,
        4 | 5 => 16,
        _ => std::mem::size_of::<RulesetAttr>(),
    };
    // SAFETY: `attr` is valid for `size` bytes, a prefix of the struct.
    let ruleset =
        unsafe { libc::syscall(SYS_CREATE_RULESET, &attr as *const RulesetAttr, size, 0) };
    if ruleset < 0 {
        return Err(format!(
            "landlock_create_ruleset: {}",
            io::Error::last_os_error()
        ));
    }
    let ruleset = ruleset as libc::c_int;
    let result = add_rules(ruleset, grants).and_then(|()| {
        // SAFETY: a ruleset fd we own; flags 0.
        if unsafe { libc::syscall(SYS_RESTRICT_SELF, ruleset, 0u32) } != 0 {
            return Err(format!(
                "landlock_restrict_self: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(())
    });
    // SAFETY: closing the fd we created.
    unsafe { libc::close(ruleset) };
    result.map(|()| Applied {
        abi,
        tcp: abi >= ABI_TCP,
        scoped: abi >= ABI_SCOPE,
    })
}

fn add_rules(ruleset: libc::c_int, grants: &[Grant<'_>]) -> Result<(), String> {
    for grant in grants {
        let path = CString::new(grant.path.as_os_str().as_bytes())
            .map_err(|_| format!("{}: NUL in path", grant.path.display()))?;
        // SAFETY: a valid C string; O_PATH opens without reading.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            // A file that does not exist here (an optional openssl.cnf) needs no rule.
            continue;
        }
        let rule = PathBeneathAttr {
            allowed_access: ACCESS_FS_READ_FILE | if grant.execute { ACCESS_FS_EXECUTE } else { 0 },
            parent_fd: fd,
        };
        // SAFETY: `rule` is a valid path-beneath attribute; the fds are ours.
        let rc = unsafe {
            libc::syscall(
                SYS_ADD_RULE,
                ruleset,
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        let err = io::Error::last_os_error();
        // SAFETY: closing the fd we opened.
        unsafe { libc::close(fd) };
        if rc != 0 {
            return Err(format!(
                "landlock_add_rule({}): {err}",
                grant.path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_grow_with_the_abi() {
        assert_eq!(fs_rights(1), 0x1fff);
        assert_eq!(fs_rights(3), 0x7fff);
        assert_eq!(fs_rights(7), 0xffff);
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
    }
}
