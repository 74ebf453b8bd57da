;; secret-xor: reads the job secret /secrets/token (at most 4096 bytes) and writes it with every
;; byte XORed with 0xff to /out/token.xor, so a test can see the secret arrived exactly without
;; the output showing it. Exit codes: 10 no /secrets/token, 11 unreadable, 12 /out not writable,
;; 13 write failed. A WAT text module: the sandbox compiles it as it is, no toolchain needed.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "token")
  (data (i32.const 16) "token.xor")
  ;; 64: one iovec {buf 1024, len}; 80: bytes read or written; 84: an opened descriptor.
  (func (export "_start")
    (local $fd i32) (local $n i32) (local $i i32)
    ;; /secrets is descriptor 5; read rights (FD_READ = 2).
    (if (call $path_open (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 0)
          (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 84))
      (then (call $proc_exit (i32.const 10))))
    (local.set $fd (i32.load (i32.const 84)))
    (i32.store (i32.const 64) (i32.const 1024))
    (i32.store (i32.const 68) (i32.const 4096))
    (if (call $fd_read (local.get $fd) (i32.const 64) (i32.const 1) (i32.const 80))
      (then (call $proc_exit (i32.const 11))))
    (local.set $n (i32.load (i32.const 80)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (i32.const 1024) (local.get $i))
          (i32.xor (i32.load8_u (i32.add (i32.const 1024) (local.get $i))) (i32.const 255)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; /out is descriptor 4: create and truncate (9), write rights (FD_WRITE = 64).
    (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 16) (i32.const 9) (i32.const 9)
          (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 84))
      (then (call $proc_exit (i32.const 12))))
    (i32.store (i32.const 68) (local.get $n))
    (if (call $fd_write (i32.load (i32.const 84)) (i32.const 64) (i32.const 1) (i32.const 80))
      (then (call $proc_exit (i32.const 13))))))
