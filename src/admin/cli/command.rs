//! The runtime API's commands: one table from which matching, permission
//! checks, `help` and the unknown-command answer all come. Adding a
//! command is one entry here and one arm in `exec`.

use crate::config::CliLevel;

/// What a command does; the arguments after its keywords are read by
/// `exec`, in HAProxy's order (names are resolved before values are
/// parsed, so a bad name is reported first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reload,
    Help,
    Prompt,
    Quit,
    LowerToUser,
    LowerToOperator,
    ShowCliLevel,
    ShowInfo,
    ShowStat,
    ShowServersState,
    ShowBackend,
    ShowSess,
    ShowErrors,
    GetWeight,
    SetServer,
    SetWeight,
    DisableServer,
    EnableServer,
    DisableHealth,
    EnableHealth,
    SetMaxconnFrontend,
    SetMaxconnServer,
    ClearCounters,
    GetSocks,
    ShutdownSessionsServer,
    ShutdownSession,
    ShowTable,
    ClearTable,
    SetTable,
    ShowMap,
    AddMap,
    SetMap,
    DelMap,
    ClearMap,
    ShowAcl,
    GetAcl,
    GetMap,
    PrepareAcl,
    CommitAcl,
    PrepareMap,
    CommitMap,
    AddAcl,
    DelAcl,
    ClearAcl,
}

pub struct Spec {
    /// The keywords that name the command.
    pub words: &'static [&'static str],
    /// As `help` shows it.
    pub usage: &'static str,
    pub help: &'static str,
    /// The lowest level allowed to run it (some arguments ask more:
    /// `clear counters all` needs admin).
    pub level: CliLevel,
    pub kind: Kind,
}

use CliLevel::{Admin, Operator, User};

/// Sorted by usage, as HAProxy lists them; `help`, `prompt` and `quit`
/// come last in `help`, as in HAProxy.
pub const COMMANDS: &[Spec] = &[
    // Hidden from `help` and from the unknown-command lists, as in
    // HAProxy: it is for the next percore process, not for people.
    Spec {
        words: &["_getsocks"],
        usage: "_getsocks",
        help: "hand the listening sockets over to a new process (binary upgrade)",
        level: Admin,
        kind: Kind::GetSocks,
    },
    Spec {
        words: &["add", "acl"],
        usage: "add acl [@<ver>] <acl> <pattern>",
        help: "add an acl entry",
        level: Operator,
        kind: Kind::AddAcl,
    },
    Spec {
        words: &["add", "map"],
        usage: "add map [@<ver>] <map> <key> <value>",
        help: "add a map entry",
        level: Operator,
        kind: Kind::AddMap,
    },
    Spec {
        words: &["clear", "acl"],
        usage: "clear acl [@<ver>] <acl>",
        help: "clear the content of an acl",
        level: Operator,
        kind: Kind::ClearAcl,
    },
    Spec {
        words: &["clear", "counters"],
        usage: "clear counters [all]",
        help: "clear max statistics counters (or all counters)",
        level: Operator,
        kind: Kind::ClearCounters,
    },
    Spec {
        words: &["clear", "map"],
        usage: "clear map [@<ver>] <map>",
        help: "clear the content of a map",
        level: Operator,
        kind: Kind::ClearMap,
    },
    Spec {
        words: &["clear", "table"],
        usage: "clear table <table> [<filter>]*",
        help: "remove an entry from a table (filter: data/key)",
        level: Operator,
        kind: Kind::ClearTable,
    },
    Spec {
        words: &["commit", "acl"],
        usage: "commit acl @<ver> <acl>",
        help: "commit the ACL at this version",
        level: Operator,
        kind: Kind::CommitAcl,
    },
    Spec {
        words: &["commit", "map"],
        usage: "commit map @<ver> <map>",
        help: "commit the map at this version",
        level: Operator,
        kind: Kind::CommitMap,
    },
    Spec {
        words: &["del", "acl"],
        usage: "del acl <acl> [<key>|#<ref>]",
        help: "delete acl entries",
        level: Operator,
        kind: Kind::DelAcl,
    },
    Spec {
        words: &["del", "map"],
        usage: "del map <map> [<key>|#<ref>]",
        help: "delete map entries",
        level: Operator,
        kind: Kind::DelMap,
    },
    Spec {
        words: &["disable", "health"],
        usage: "disable health <bk>/<srv>",
        help: "disable health checks",
        level: Admin,
        kind: Kind::DisableHealth,
    },
    Spec {
        words: &["disable", "server"],
        usage: "disable server (DEPRECATED)",
        help: "disable a server for maintenance (use 'set server' instead)",
        level: Admin,
        kind: Kind::DisableServer,
    },
    Spec {
        words: &["enable", "health"],
        usage: "enable health <bk>/<srv>",
        help: "enable health checks",
        level: Admin,
        kind: Kind::EnableHealth,
    },
    Spec {
        words: &["enable", "server"],
        usage: "enable server  (DEPRECATED)",
        help: "enable a disabled server (use 'set server' instead)",
        level: Admin,
        kind: Kind::EnableServer,
    },
    Spec {
        words: &["get", "acl"],
        usage: "get acl <acl> <value>",
        help: "report the patterns matching a sample for an ACL",
        level: Operator,
        kind: Kind::GetAcl,
    },
    Spec {
        words: &["get", "map"],
        // HAProxy 2.6's usage line, `<acl>` included.
        usage: "get map <acl> <value>",
        help: "report the keys and values matching a sample for a map",
        level: Operator,
        kind: Kind::GetMap,
    },
    Spec {
        words: &["get", "weight"],
        usage: "get weight <bk>/<srv>",
        help: "report a server's current weight",
        level: User,
        kind: Kind::GetWeight,
    },
    Spec {
        words: &["operator"],
        usage: "operator",
        help: "lower the level of the current CLI session to operator",
        level: User,
        kind: Kind::LowerToOperator,
    },
    // Not in HAProxy 2.6's stats socket (its master CLI has `reload`), so
    // kept out of `help` and the unknown-command lists, which match 2.6's.
    Spec {
        words: &["prepare", "acl"],
        usage: "prepare acl <acl>",
        help: "prepare a new version for atomic ACL replacement",
        level: Operator,
        kind: Kind::PrepareAcl,
    },
    Spec {
        words: &["prepare", "map"],
        usage: "prepare map <acl>",
        help: "prepare a new version for atomic map replacement",
        level: Operator,
        kind: Kind::PrepareMap,
    },
    Spec {
        words: &["reload"],
        usage: "reload",
        help: "",
        level: Admin,
        kind: Kind::Reload,
    },
    Spec {
        words: &["set", "map"],
        usage: "set map <map> [<key>|#<ref>] <value>",
        help: "modify a map entry",
        level: Operator,
        kind: Kind::SetMap,
    },
    Spec {
        words: &["set", "maxconn", "frontend"],
        usage: "set maxconn frontend <frontend> <value>",
        help: "change a frontend's maxconn setting",
        level: Admin,
        kind: Kind::SetMaxconnFrontend,
    },
    Spec {
        words: &["set", "maxconn", "server"],
        usage: "set maxconn server <bk>/<srv>",
        help: "change a server's maxconn setting",
        level: Admin,
        kind: Kind::SetMaxconnServer,
    },
    Spec {
        words: &["set", "server"],
        usage: "set server <bk>/<srv> [opts]",
        help: "change a server's state, weight or address",
        level: Admin,
        kind: Kind::SetServer,
    },
    Spec {
        words: &["set", "table"],
        usage: "set table <table> key <k> [data.* <v>]*",
        help: "update or create a table entry's data",
        level: Admin,
        kind: Kind::SetTable,
    },
    Spec {
        words: &["set", "weight"],
        usage: "set weight <bk>/<srv>  (DEPRECATED)",
        help: "change a server's weight (use 'set server' instead)",
        level: Admin,
        kind: Kind::SetWeight,
    },
    Spec {
        words: &["show", "acl"],
        usage: "show acl [[@<ver>] <acl>]",
        help: "report available acls or dump an acl's contents",
        level: Operator,
        kind: Kind::ShowAcl,
    },
    Spec {
        words: &["show", "backend"],
        usage: "show backend",
        help: "list backends in the current running config",
        level: User,
        kind: Kind::ShowBackend,
    },
    Spec {
        words: &["show", "cli", "level"],
        usage: "show cli level",
        help: "display the level of the current CLI session",
        level: User,
        kind: Kind::ShowCliLevel,
    },
    Spec {
        words: &["show", "errors"],
        usage: "show errors [<px>] [request|response]",
        help: "report last request and/or response errors for each proxy",
        level: Operator,
        kind: Kind::ShowErrors,
    },
    Spec {
        words: &["show", "info"],
        usage: "show info [json|typed]*",
        help: "report information about the running process",
        level: User,
        kind: Kind::ShowInfo,
    },
    Spec {
        words: &["show", "map"],
        usage: "show map [[@<ver>] <map>]",
        help: "report available maps or dump a map's contents",
        level: Operator,
        kind: Kind::ShowMap,
    },
    Spec {
        words: &["show", "servers", "state"],
        usage: "show servers state [<backend>]",
        help: "dump volatile server information (all or for a single backend)",
        level: User,
        kind: Kind::ShowServersState,
    },
    Spec {
        words: &["show", "sess"],
        usage: "show sess",
        help: "report the list of current sessions",
        level: Operator,
        kind: Kind::ShowSess,
    },
    Spec {
        words: &["show", "stat"],
        usage: "show stat [json|typed]*",
        help: "report counters for each proxy and server",
        level: User,
        kind: Kind::ShowStat,
    },
    Spec {
        words: &["show", "table"],
        usage: "show table <table> [<filter>]*",
        help: "report table usage stats or dump this table's contents (filter: data/key)",
        level: Operator,
        kind: Kind::ShowTable,
    },
    Spec {
        words: &["shutdown", "session"],
        usage: "shutdown session [id]",
        help: "kill a specific session",
        level: Admin,
        kind: Kind::ShutdownSession,
    },
    Spec {
        words: &["shutdown", "sessions", "server"],
        usage: "shutdown sessions server <bk>/<srv>",
        help: "kill sessions on a server",
        level: Admin,
        kind: Kind::ShutdownSessionsServer,
    },
    Spec {
        words: &["user"],
        usage: "user",
        help: "lower the level of the current CLI session to user",
        level: User,
        kind: Kind::LowerToUser,
    },
    Spec {
        words: &["help"],
        usage: "help [<command>]",
        help: "list matching or all commands",
        level: User,
        kind: Kind::Help,
    },
    Spec {
        words: &["prompt"],
        usage: "prompt",
        help: "toggle interactive mode with prompt",
        level: User,
        kind: Kind::Prompt,
    },
    Spec {
        words: &["quit"],
        usage: "quit",
        help: "disconnect",
        level: User,
        kind: Kind::Quit,
    },
];

/// The entries `help` always ends with.
const ALWAYS: [Kind; 3] = [Kind::Help, Kind::Prompt, Kind::Quit];
/// Commands `help` never lists.
const HIDDEN: [Kind; 2] = [Kind::GetSocks, Kind::Reload];

/// The command `words` names, and its arguments.
pub fn find(words: &[String]) -> Option<(&'static Spec, &[String])> {
    COMMANDS
        .iter()
        .filter(|spec| {
            words.len() >= spec.words.len()
                && spec.words.iter().zip(words).all(|(k, w)| *k == w.as_str())
        })
        // `shutdown session` and `shutdown sessions server` both start
        // with `shutdown`: the longest match wins.
        .max_by_key(|spec| spec.words.len())
        .map(|spec| (spec, &words[spec.words.len()..]))
}

fn line(out: &mut String, spec: &Spec) {
    out.push_str(&format!("  {:<40}: {}\n", spec.usage, spec.help));
}

fn list<'a>(out: &mut String, specs: impl Iterator<Item = &'a Spec>) {
    for spec in specs {
        line(out, spec);
    }
    for spec in COMMANDS.iter().filter(|s| ALWAYS.contains(&s.kind)) {
        line(out, spec);
    }
}

/// Listed commands: all but the three `help` ends with and the unlisted
/// ones (empty help).
fn ordinary() -> impl Iterator<Item = &'static Spec> {
    COMMANDS
        .iter()
        .filter(|s| !ALWAYS.contains(&s.kind) && !HIDDEN.contains(&s.kind))
}

/// `help [<words>]`: every command, or those whose keywords start with
/// `filter` (HAProxy lists all commands at every level and checks the
/// level when one runs).
pub fn help(filter: &[String]) -> String {
    let mut out = String::from("The following commands are valid at this level:\n");
    list(
        &mut out,
        ordinary().filter(|s| {
            filter
                .iter()
                .zip(s.words.iter())
                .all(|(w, k)| k.starts_with(w.as_str()))
                && filter.len() <= s.words.len()
        }),
    );
    out
}

/// The answer to words that name no command: the commands sharing the
/// longest run of leading keywords with them, or the whole list when none
/// shares even the first. (HAProxy 2.6 ranks candidates by a word
/// similarity score; the keyword prefix gives the same lists for the usual
/// slips, such as a missing or misspelt last word.)
pub fn unknown(words: &[String]) -> String {
    let shared = |s: &Spec| {
        s.words
            .iter()
            .zip(words)
            .take_while(|(k, w)| **k == w.as_str())
            .count()
    };
    let best = ordinary().map(shared).max().unwrap_or(0);
    let mut out = String::new();
    if best == 0 {
        out.push_str("Unknown command. Please enter one of the following commands only:\n");
        list(&mut out, ordinary());
    } else {
        out.push_str("Unknown command, but maybe one of the following ones is a better match:\n");
        list(&mut out, ordinary().filter(|s| shared(s) == best));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_table_is_sorted_and_unambiguous() {
        let usages: Vec<&str> = ordinary().map(|s| s.usage).collect();
        let mut sorted = usages.clone();
        sorted.sort_unstable();
        assert_eq!(usages, sorted);
        for (i, a) in COMMANDS.iter().enumerate() {
            for b in &COMMANDS[i + 1..] {
                assert_ne!(a.words, b.words, "{} twice", a.usage);
            }
        }
    }

    #[test]
    fn finds_the_longest_match_and_its_arguments() {
        let words = owned(&["shutdown", "sessions", "server", "a/b"]);
        let (spec, args) = find(&words).unwrap();
        assert_eq!(spec.kind, Kind::ShutdownSessionsServer);
        assert_eq!(args, &owned(&["a/b"])[..]);
        let words = owned(&["shutdown", "session", "0x1"]);
        assert_eq!(find(&words).unwrap().0.kind, Kind::ShutdownSession);
        assert!(find(&owned(&["set", "maxconn"])).is_none());
        assert!(find(&[]).is_none());
    }

    #[test]
    fn help_lines_have_haproxys_layout() {
        let text = help(&owned(&["get"]));
        assert_eq!(
            text,
            "The following commands are valid at this level:\n  \
             get acl <acl> <value>                   : report the patterns matching a sample for an ACL\n  \
             get map <acl> <value>                   : report the keys and values matching a sample for a map\n  \
             get weight <bk>/<srv>                   : report a server's current weight\n  \
             help [<command>]                        : list matching or all commands\n  \
             prompt                                  : toggle interactive mode with prompt\n  \
             quit                                    : disconnect\n"
        );
    }

    #[test]
    fn getsocks_is_found_but_never_listed() {
        let words = owned(&["_getsocks"]);
        let (spec, _) = find(&words).unwrap();
        assert_eq!((spec.kind, spec.level), (Kind::GetSocks, Admin));
        assert!(!help(&[]).contains("_getsocks"));
        assert!(!help(&owned(&["_"])).contains("_getsocks"));
        assert!(!unknown(&owned(&["_getsock"])).contains("_getsocks"));
    }

    #[test]
    fn unknown_commands_get_the_closest_ones() {
        let text = unknown(&owned(&["set", "maxconn", "foo"]));
        assert!(text.starts_with("Unknown command, but maybe"));
        assert!(text.contains("set maxconn frontend"));
        assert!(text.contains("set maxconn server"));
        assert!(!text.contains("set weight"));
        let text = unknown(&owned(&["foo"]));
        assert!(text.starts_with("Unknown command. Please enter"));
        assert!(text.contains("show servers state"));
    }
}
