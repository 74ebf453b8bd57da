//! Updates applied to temporary files standing in for the installed binary, and a download from
//! a loopback server.

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    target: PathBuf,
    candidate: PathBuf,
}

fn fixture(old: &[u8], new: &[u8]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).expect("bin dir");
    let target = bin.join("sgl");
    fs::write(&target, old).expect("old binary");
    let candidate = dir.path().join("sgl-new");
    fs::write(&candidate, new).expect("new binary");
    Fixture { dir, target, candidate }
}

fn hash(path: &Path) -> String {
    sha256_file(path).expect("hashable")
}

#[test]
fn allowed_candidate_replaces_the_target_atomically_with_mode_0755() {
    let f = fixture(b"old sgl", b"new sgl");
    let new_hash = hash(&f.candidate);
    let old_hash = hash(&f.target);
    let outcome = apply_update(&f.candidate, &f.target, &["00".repeat(32), new_hash.clone()]).expect("update");
    let canonical = fs::canonicalize(&f.target).expect("exists");
    assert_eq!(outcome, UpdateOutcome::Replaced { path: canonical, previous_hash: old_hash, new_hash });
    assert_eq!(fs::read(&f.target).expect("readable"), b"new sgl");
    assert!(!f.target.with_file_name(STAGING_FILE_NAME).exists(), "staging file renamed away");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&f.target).expect("exists").permissions().mode() & 0o777, 0o755);
}

#[test]
fn hash_not_on_the_allowlist_is_refused_and_nothing_changes() {
    let f = fixture(b"old sgl", b"evil sgl");
    let evil = hash(&f.candidate);
    let error = apply_update(&f.candidate, &f.target, &[hash(&f.target)]).expect_err("refused");
    assert!(matches!(&error, UpdateError::NotAllowed { hash, n_allowed: 1 } if *hash == evil), "{error:?}");
    assert!(error.to_string().contains(&evil));
    assert_eq!(fs::read(&f.target).expect("readable"), b"old sgl");
    // An empty allowlist allows nothing.
    let error = apply_update(&f.candidate, &f.target, &[]).expect_err("refused");
    assert!(matches!(error, UpdateError::NotAllowed { n_allowed: 0, .. }));
    assert!(!f.target.with_file_name(STAGING_FILE_NAME).exists());
}

#[test]
fn same_hash_is_already_up_to_date_and_writes_nothing() {
    let f = fixture(b"same sgl", b"same sgl");
    let same = hash(&f.target);
    let modified = fs::metadata(&f.target).and_then(|m| m.modified()).expect("mtime");
    let outcome = apply_update(&f.candidate, &f.target, std::slice::from_ref(&same)).expect("ok");
    assert_eq!(outcome, UpdateOutcome::AlreadyUpToDate { hash: same });
    assert_eq!(fs::metadata(&f.target).and_then(|m| m.modified()).expect("mtime"), modified);
}

#[test]
fn allowlist_compares_case_insensitively_and_ignores_whitespace() {
    let f = fixture(b"old sgl", b"new sgl");
    let upper = format!(" {}\n", hash(&f.candidate).to_uppercase());
    let outcome = apply_update(&f.candidate, &f.target, &[upper]).expect("accepted");
    assert!(matches!(outcome, UpdateOutcome::Replaced { .. }));
    assert_eq!(fs::read(&f.target).expect("readable"), b"new sgl");
}

#[test]
fn a_symlinked_target_replaces_the_file_it_points_at_and_a_stale_staging_file_is_cleared() {
    let f = fixture(b"old sgl", b"new sgl");
    let link = f.dir.path().join("sgl-link");
    std::os::unix::fs::symlink(&f.target, &link).expect("symlink");
    fs::write(f.target.with_file_name(STAGING_FILE_NAME), b"leftover").expect("stale staging");
    apply_update(&f.candidate, &link, &[hash(&f.candidate)]).expect("update");
    assert!(fs::symlink_metadata(&link).expect("exists").file_type().is_symlink(), "link kept");
    assert_eq!(fs::read(&f.target).expect("readable"), b"new sgl");
    assert!(!f.target.with_file_name(STAGING_FILE_NAME).exists());
}

#[test]
fn missing_files_and_permission_errors_are_typed() {
    let f = fixture(b"old", b"new");
    let missing = f.dir.path().join("nope");
    assert!(matches!(apply_update(&missing, &f.target, &[]), Err(UpdateError::ReadCandidate { .. })));
    let allowed = [hash(&f.candidate)];
    assert!(matches!(apply_update(&f.candidate, &missing, &allowed), Err(UpdateError::ReadTarget { .. })));
    // The tests may run as root, where chmod cannot provoke EACCES, so the mapping is checked
    // directly.
    let denied = install_error(Path::new("/usr/local/bin"), Path::new("/usr/local/bin/.sgl-update.tmp"), {
        io::Error::from(io::ErrorKind::PermissionDenied)
    });
    assert!(matches!(&denied, UpdateError::PermissionDenied { dir, .. } if dir == Path::new("/usr/local/bin")));
    assert!(denied.to_string().contains("sudo") && denied.to_string().contains("~/.local/bin"));
    let other = install_error(Path::new("/d"), Path::new("/d/f"), io::Error::from(io::ErrorKind::StorageFull));
    assert!(matches!(other, UpdateError::Install { .. }));
}

#[test]
fn download_urls_are_https_unless_loopback() {
    for ok in ["https://mirror.example/sgl", "http://127.0.0.1:8080/sgl", "http://localhost/sgl", "http://[::1]/sgl"] {
        assert!(check_download_url(ok).is_ok(), "{ok}");
    }
    for bad in ["http://mirror.example/sgl", "http://10.0.0.1/sgl", "ftp://x/sgl", "file:///tmp/sgl", "not a url"] {
        assert!(matches!(check_download_url(bad), Err(DownloadError::InsecureUrl(_))), "{bad}");
    }
}

#[tokio::test]
async fn download_from_loopback_then_apply() {
    let app = axum::Router::new()
        .route("/sgl", axum::routing::get(|| async { b"downloaded sgl".to_vec() }))
        .route("/missing", axum::routing::get(|| async { (axum::http::StatusCode::NOT_FOUND, "no") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let f = fixture(b"old sgl", b"unused");
    let dest = f.dir.path().join("download");
    let n = download(&format!("http://{addr}/sgl"), &dest).await.expect("download");
    assert_eq!(n, 14);
    let error = download(&format!("http://{addr}/missing"), &dest).await.expect_err("404");
    assert!(matches!(error, DownloadError::Http { .. }));
    let outcome = apply_update(&dest, &f.target, &[hash(&dest)]).expect("update");
    assert!(matches!(outcome, UpdateOutcome::Replaced { .. }));
    assert_eq!(fs::read(&f.target).expect("readable"), b"downloaded sgl");
    server.abort();
}
