//! The guest sees two directories and nothing else: `/in` it can only read, `/out` it can
//! write, no path leads out of either, no sockets, and it cannot sleep past its deadline.
//! Every refusal is checked beside an allowed twin, so a test cannot pass because the call
//! itself was malformed.

use std::time::Duration;

use sgl_sandbox::WasmLimits;

use crate::{FD_READ, FD_WRITE, JobDirs, O_CREAT, guest, job, sandbox};

/// WASI errnos.
const ERRNO_BADF: i32 = 8;
const ERRNO_NOTSOCK: u8 = 57;
const ERRNO_NOTSUP: i32 = 58;
/// What wasmtime-wasi 48 answers for a path that leaves a preopen and for a write under a
/// read-only one.
const ERRNO_PERM: u8 = 63;

#[test]
fn only_in_and_out_are_preopened_as_descriptors_3_and_4() {
    // Prints the name of every preopen from descriptor 3 on, one per line, and exits with the
    // errno of the first descriptor that is not one.
    let module = guest(
        r#"
  (func (export "_start")
    (local $fd i32) (local $errno i32)
    (local.set $fd (i32.const 3))
    (block $done
      (loop $next
        (local.set $errno (call $fd_prestat_get (local.get $fd) (i32.const 24)))
        (br_if $done (local.get $errno))
        (drop (call $fd_prestat_dir_name (local.get $fd) (i32.const 4096) (i32.load (i32.const 28))))
        (drop (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 28))))
        (call $put_byte (i32.const 10))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $next)))
    (call $proc_exit (local.get $errno)))
"#,
    );
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let report = sandbox().run(&job(&module, &input, &output)).expect("the guest runs");
    assert_eq!(String::from_utf8_lossy(&report.stdout), "/in\n/out\n");
    assert_eq!(report.exit_code, ERRNO_BADF, "descriptor 5 does not exist");
}

#[test]
fn no_path_leads_out_of_the_input_directory() {
    // One errno byte per read-only path_open under /in. First two that must work: a file in
    // /in, and a symlink to it followed. Then ways out, each to a file that exists on the host:
    // beside /in, /etc/passwd (absolute and by climbing), a symlink to the file beside /in
    // (followed), and a climb out and back in.
    let module = guest(&format!(
        r#"
  (data (i32.const 1024) "data.txt")
  (data (i32.const 1040) "link-inside")
  (data (i32.const 1056) "../secret.txt")
  (data (i32.const 1072) "/etc/passwd")
  (data (i32.const 1088) "../../../../../../../../etc/passwd")
  (data (i32.const 1136) "link-to-secret")
  (data (i32.const 1152) "../out/../in/data.txt")
  (func $open_following (param $path i32) (param $len i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (local.get $len) (i32.const 0)
      (i64.const {FD_READ}) (i64.const {FD_READ}) (i32.const 0) (i32.const 12)))
  (func (export "_start")
    (call $put_byte (call $open (i32.const 3) (i32.const 1024) (i32.const 8) (i32.const 0) (i64.const {FD_READ})))
    (call $put_byte (call $open_following (i32.const 1040) (i32.const 11)))
    (call $put_byte (call $open (i32.const 3) (i32.const 1056) (i32.const 13) (i32.const 0) (i64.const {FD_READ})))
    (call $put_byte (call $open (i32.const 3) (i32.const 1072) (i32.const 11) (i32.const 0) (i64.const {FD_READ})))
    (call $put_byte (call $open (i32.const 3) (i32.const 1088) (i32.const 34) (i32.const 0) (i64.const {FD_READ})))
    (call $put_byte (call $open_following (i32.const 1136) (i32.const 14)))
    (call $put_byte (call $open (i32.const 3) (i32.const 1152) (i32.const 21) (i32.const 0) (i64.const {FD_READ}))))
"#
    ));
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    std::fs::write(input.join("data.txt"), "visible").expect("write input");
    std::os::unix::fs::symlink("data.txt", input.join("link-inside")).expect("symlink inside");
    let secret = dirs.root.path().join("secret.txt");
    std::fs::write(&secret, "host only").expect("write secret");
    std::os::unix::fs::symlink(&secret, input.join("link-to-secret")).expect("symlink out");
    let report = sandbox().run(&job(&module, &input, &output)).expect("the guest runs");
    assert_eq!(report.exit_code, 0);
    let errnos = &report.stdout;
    assert_eq!(errnos.len(), 7, "{errnos:?}");
    assert_eq!(&errnos[..2], &[0, 0], "the file inside /in opens, directly and through a symlink");
    for (path, errno) in
        ["../secret.txt", "/etc/passwd", "../../(...)/etc/passwd", "link-to-secret", "../out/../in/data.txt"]
            .iter()
            .zip(&errnos[2..])
    {
        assert_eq!(*errno, ERRNO_PERM, "{path} from inside /in");
    }
}

#[test]
fn the_input_directory_is_read_only_and_the_output_directory_is_not() {
    // One errno byte each: create /in/new.txt, open /in/data.txt for writing, make a directory
    // and delete a file in /in; then create /out/new.txt and write to it.
    let module = guest(&format!(
        r#"
  (data (i32.const 1024) "data.txt")
  (data (i32.const 1040) "new.txt")
  (data (i32.const 1056) "dir")
  (func (export "_start")
    (call $put_byte (call $open (i32.const 3) (i32.const 1040) (i32.const 7) (i32.const {O_CREAT}) (i64.const {FD_WRITE})))
    (call $put_byte (call $open (i32.const 3) (i32.const 1024) (i32.const 8) (i32.const 0) (i64.const {FD_WRITE})))
    (call $put_byte (call $path_create_directory (i32.const 3) (i32.const 1056) (i32.const 3)))
    (call $put_byte (call $path_unlink_file (i32.const 3) (i32.const 1024) (i32.const 8)))
    (call $put_byte (call $open (i32.const 4) (i32.const 1040) (i32.const 7) (i32.const {O_CREAT}) (i64.const {FD_WRITE})))
    (call $put_byte (call $write (i32.load (i32.const 12)) (i32.const 1040) (i32.const 7))))
"#
    ));
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    std::fs::write(input.join("data.txt"), "original").expect("write input");
    let report = sandbox().run(&job(&module, &input, &output)).expect("the guest runs");
    assert_eq!(report.exit_code, 0);
    let errnos = &report.stdout;
    assert_eq!(errnos.len(), 6, "{errnos:?}");
    for (what, errno) in
        ["create /in/new.txt", "open /in/data.txt to write", "mkdir /in/dir", "unlink /in/data.txt"].iter().zip(errnos)
    {
        assert_eq!(*errno, ERRNO_PERM, "{what}");
    }
    assert_eq!(&errnos[4..], &[0, 0], "creating and writing /out/new.txt works");
    let mut input_names: Vec<_> = std::fs::read_dir(&input)
        .expect("list input")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8 name"))
        .collect();
    input_names.sort();
    assert_eq!(input_names, ["data.txt"]);
    assert_eq!(std::fs::read_to_string(input.join("data.txt")).expect("read input"), "original");
    assert_eq!(std::fs::read_to_string(output.join("new.txt")).expect("read output"), "new.txt");
}

#[test]
fn there_are_no_sockets() {
    // sock_accept on the preopened directories and on stdin: one errno byte each.
    let module = guest(
        r#"
  (func (export "_start")
    (call $put_byte (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 12)))
    (call $put_byte (call $sock_accept (i32.const 4) (i32.const 0) (i32.const 12)))
    (call $put_byte (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 12))))
"#,
    );
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let report = sandbox().run(&job(&module, &input, &output)).expect("the guest runs");
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.stdout.len(), 3);
    assert_eq!(report.stdout, [ERRNO_NOTSOCK; 3], "a descriptor that is not a socket, for each");
}

#[test]
fn sleeping_is_refused_so_the_deadline_holds() {
    // poll_oneoff on a one-hour monotonic clock subscription (48 bytes at 4096: userdata,
    // tag 0 = clock, clock id 1, timeout in ns, precision, flags 0). With wasmtime-wasi's own
    // poll_oneoff, a 2 s sleep held a run with a 200 ms deadline for 2.05 s: the epoch is only
    // checked in Wasm code, never inside a host call.
    let module = guest(
        r#"
  (func (export "_start")
    (i32.store8 (i32.const 4104) (i32.const 0))
    (i32.store (i32.const 4112) (i32.const 1))
    (i64.store (i32.const 4120) (i64.const 3600000000000))
    (call $put_byte (call $poll_oneoff (i32.const 4096) (i32.const 8192) (i32.const 1) (i32.const 12))))
"#,
    );
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { wall_clock: Duration::from_secs(10), ..WasmLimits::default() };
    let report = sandbox().run(&run).expect("the guest runs");
    assert_eq!(report.stdout, [ERRNO_NOTSUP as u8]);
    assert!(report.wall_time < Duration::from_secs(5), "took {:?}", report.wall_time);
}
