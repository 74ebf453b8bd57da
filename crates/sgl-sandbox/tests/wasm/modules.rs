//! What a guest module must be: valid, importing only WASI, exporting `_start`; how it ends:
//! returning, `proc_exit`, or a trap; and a bad directory is an I/O error naming it.

use sgl_sandbox::SandboxError;

use crate::{JobDirs, guest, job, sandbox};

fn run_module(module: &[u8]) -> Result<sgl_sandbox::WasmReport, SandboxError> {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    sandbox().run(&job(module, &input, &output))
}

#[test]
fn modules_that_cannot_run_are_invalid() {
    let garbage = b"\0asm\x01\0\0\0garbage";
    let bad_text = b"(module (func (export \"_start\") (i32.add)))";
    let foreign_import = br#"(module (import "env" "launch" (func)) (func (export "_start")))"#;
    let no_start = br#"(module (memory (export "memory") 1) (func (export "main")))"#;
    // Wasm threads are not enabled: a shared memory does not validate.
    let shared_memory = br#"(module (memory (export "memory") 1 1 shared) (func (export "_start")))"#;
    for (what, module) in [
        ("garbage", &garbage[..]),
        ("ill-typed text", &bad_text[..]),
        ("a foreign import", &foreign_import[..]),
        ("no _start", &no_start[..]),
        ("a shared memory", &shared_memory[..]),
    ] {
        let result = run_module(module);
        assert!(matches!(result, Err(SandboxError::ModuleInvalid { .. })), "{what}: {result:?}");
    }
}

#[test]
fn a_binary_module_runs_like_its_text() {
    // The smallest command: a memory and an empty _start, as binary Wasm.
    let binary: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
        0x03, 0x02, 0x01, 0x00, // functions: one of type 0
        0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1
        0x07, 0x13, 0x02, // exports: two
        0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory" = memory 0
        0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // "_start" = func 0
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
    ];
    let report = run_module(binary).expect("the binary module runs");
    assert_eq!(report.exit_code, 0);
}

#[test]
fn proc_exit_is_an_exit_code_not_an_error() {
    let report = run_module(&guest(r#"(func (export "_start") (call $proc_exit (i32.const 7)))"#))
        .expect("exiting is a normal end");
    assert_eq!(report.exit_code, 7);
}

#[test]
fn a_trap_is_a_guest_trap_with_its_message() {
    match run_module(&guest(r#"(func (export "_start") unreachable)"#)) {
        Err(SandboxError::GuestTrap { message, .. }) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected GuestTrap, got {other:?}"),
    }
}

#[test]
fn a_missing_directory_is_an_io_error_naming_it() {
    let module = guest(r#"(func (export "_start"))"#);
    let dirs = JobDirs::new();
    let missing = dirs.root.path().join("nowhere");
    let output = dirs.output();
    match sandbox().run(&job(&module, &missing, &output)) {
        Err(SandboxError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
}
