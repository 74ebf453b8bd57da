//! What a job cannot reach: the network (even the host's loopback), the host's files beyond
//! `/usr` and its own directories, and writes anywhere but `/out` and `/tmp`. Every refusal is
//! checked beside an allowed twin, so a test cannot pass because the probe itself was broken.

use std::net::TcpListener;
use std::process::Command;

use crate::{JobDirs, python, sandbox};

/// Connects to each address given as `host:port` arguments; prints `ok` or the errno, one
/// line each.
const CONNECT: &str = r#"
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        print("ok")
    except OSError as error:
        print(error.errno)
"#;

/// Linux's `ECONNREFUSED`, `ENETUNREACH`, `ENOENT`, `EROFS`.
const ECONNREFUSED: &str = "111";
const ENETUNREACH: &str = "101";
const ENOENT: &str = "2";
const EROFS: &str = "30";

#[test]
fn no_network_inside_not_even_the_hosts_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
    let host_port = listener.local_addr().expect("its address").to_string();
    // The host's listener, then public IPv4 and IPv6 addresses (refused without a packet sent).
    let targets = [host_port.as_str(), "1.1.1.1:80", "2606:4700:4700::1111:80"];

    // The twin: on the host, the same script reaches the listener.
    let outside = Command::new("/usr/bin/python3").args(["-c", CONNECT, &host_port]).output().expect("python3 runs");
    assert_eq!(String::from_utf8_lossy(&outside.stdout), "ok\n", "{}", String::from_utf8_lossy(&outside.stderr));

    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = python(CONNECT, &input, &output);
    run.args.extend(targets.iter().map(|target| (*target).to_owned()));
    let report = sandbox().run(&run).expect("the job runs");
    assert_eq!(report.exit_code, 0, "{}", String::from_utf8_lossy(&report.stderr));
    let errnos: Vec<String> = String::from_utf8_lossy(&report.stdout).lines().map(str::to_owned).collect();
    // 127.0.0.1 inside is the sandbox's own loopback, where nothing listens; there is no route
    // anywhere else.
    assert_eq!(errnos, [ECONNREFUSED, ENETUNREACH, ENETUNREACH], "for {targets:?}");
}

/// Prints, one line each, `ok` or the errno of: reading each path given as an argument.
const READ: &str = r#"
import os, sys
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read()
        print("ok")
    except OSError as error:
        print(error.errno)
"#;

#[test]
fn host_files_outside_usr_and_the_job_directories_are_invisible() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    std::fs::write(input.join("data.txt"), "visible").expect("write input");
    let secret = dirs.root.path().join("secret.txt");
    std::fs::write(&secret, "host only").expect("write secret");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    assert!(std::path::Path::new(&home).is_dir(), "the host has a home directory: {home}");
    let secret_path = secret.to_str().expect("utf-8 path");
    let paths = ["/in/data.txt", "/usr/bin/python3", "/etc/passwd", home.as_str(), secret_path, "/in/../secret.txt"];

    let mut run = python(READ, &input, &output);
    run.args.extend(paths.iter().map(|path| (*path).to_owned()));
    let report = sandbox().run(&run).expect("the job runs");
    assert_eq!(report.exit_code, 0, "{}", String::from_utf8_lossy(&report.stderr));
    let results: Vec<String> = String::from_utf8_lossy(&report.stdout).lines().map(str::to_owned).collect();
    assert_eq!(results, ["ok", "ok", ENOENT, ENOENT, ENOENT, ENOENT], "for {paths:?}");
}

/// Prints, one line each, `ok` or the errno of: creating each path given as an argument (or
/// overwriting it, if it exists).
const WRITE: &str = r#"
import sys
for path in sys.argv[1:]:
    try:
        with open(path, "w") as file:
            file.write("written")
        print("ok")
    except OSError as error:
        print(error.errno)
"#;

#[test]
fn only_out_and_tmp_are_writable() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    std::fs::write(input.join("data.txt"), "original").expect("write input");
    let paths = ["/in/data.txt", "/in/new.txt", "/usr/new.txt", "/new.txt", "/out/new.txt", "/tmp/new.txt"];

    let mut run = python(WRITE, &input, &output);
    run.args.extend(paths.iter().map(|path| (*path).to_owned()));
    let report = sandbox().run(&run).expect("the job runs");
    assert_eq!(report.exit_code, 0, "{}", String::from_utf8_lossy(&report.stderr));
    let results: Vec<String> = String::from_utf8_lossy(&report.stdout).lines().map(str::to_owned).collect();
    assert_eq!(results, [EROFS, EROFS, EROFS, EROFS, "ok", "ok"], "for {paths:?}");
    assert_eq!(std::fs::read_to_string(input.join("data.txt")).expect("read input"), "original");
    assert!(!input.join("new.txt").exists());
    assert_eq!(std::fs::read_to_string(output.join("new.txt")).expect("read output"), "written");
}
