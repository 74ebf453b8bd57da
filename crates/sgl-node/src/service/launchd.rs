//! The launchd agent: plist rendering (XML-escaped) and `launchctl print` parsing.
//!
//! `caffeinate -i` wraps the node so idle sleep does not stop it (closing a laptop lid still
//! does). `StandardOutPath`/`StandardErrorPath` point at a small file under
//! `~/Library/Logs/sgl-node/` that only catches output from before the node opens its own
//! rotating `--log-file` (early crashes, argument errors); nothing else is written there.

use super::{LABEL, Platform, ServiceSpec, ServiceStatus};

/// `caffeinate`, which keeps the Mac out of idle sleep while the node runs.
pub const CAFFEINATE: &str = "/usr/bin/caffeinate";

/// The agent's plist for `spec`.
pub fn render_launchd_plist(spec: &ServiceSpec) -> String {
    let mut program = vec![CAFFEINATE.to_owned(), "-i".to_owned(), spec.executable().display().to_string()];
    program.extend(spec.arguments().iter().cloned());
    let mut plist = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `sgl service install`; re-run it to change this file. -->\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    key_string(&mut plist, "Label", LABEL);
    plist.push_str("\t<key>ProgramArguments</key>\n\t<array>\n");
    for arg in &program {
        plist.push_str(&format!("\t\t<string>{}</string>\n", xml_escape(arg)));
    }
    plist.push_str("\t</array>\n");
    if !spec.environment().is_empty() {
        plist.push_str("\t<key>EnvironmentVariables</key>\n\t<dict>\n");
        for (name, value) in spec.environment() {
            plist.push_str(&format!(
                "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
                xml_escape(name),
                xml_escape(value)
            ));
        }
        plist.push_str("\t</dict>\n");
    }
    plist.push_str(
        "\t<key>RunAtLoad</key>\n\t<true/>\n\
         \t<key>KeepAlive</key>\n\t<true/>\n\
         \t<key>ThrottleInterval</key>\n\t<integer>15</integer>\n\
         \t<key>ExitTimeOut</key>\n\t<integer>30</integer>\n\
         \t<key>Umask</key>\n\t<integer>63</integer>\n",
    );
    key_string(&mut plist, "ProcessType", "Interactive");
    let early = spec.early_output().display().to_string();
    key_string(&mut plist, "StandardOutPath", &early);
    key_string(&mut plist, "StandardErrorPath", &early);
    plist.push_str("</dict>\n</plist>\n");
    plist
}

fn key_string(plist: &mut String, key: &str, value: &str) {
    plist.push_str(&format!("\t<key>{key}</key>\n\t<string>{}</string>\n", xml_escape(value)));
}

/// `&`, `<`, `>`, `"` and `'` as XML entities.
pub fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `launchctl print gui/<uid>/<label>` output as a status: the top-level `state`, `pid`, `runs`
/// and `last exit code` lines (nested blocks repeat some keys and are skipped).
pub fn parse_launchctl_print(text: &str, installed: bool) -> ServiceStatus {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let top_level = line.strip_prefix('\t').filter(|rest| !rest.starts_with('\t'))?;
            top_level.strip_prefix(key)?.trim_start().strip_prefix('=').map(str::trim)
        })
    };
    ServiceStatus {
        platform: Platform::Launchd,
        installed,
        loaded: true,
        state: value("state").unwrap_or("unknown").to_owned(),
        sub_state: None,
        pid: value("pid").and_then(|p| p.parse().ok()),
        restarts: value("runs").and_then(|n| n.parse().ok()),
        // "(never exited)" before the first exit.
        last_exit_code: value("last exit code").and_then(|n| n.parse().ok()),
    }
}
