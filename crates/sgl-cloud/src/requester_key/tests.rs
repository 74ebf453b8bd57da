//! Where the key is looked for, and that it is created private on first use and reused after.

use std::os::unix::fs::PermissionsExt as _;

use super::*;

#[test]
fn the_flag_wins_then_xdg_config_home_then_home() {
    let lookup = |explicit: Option<&str>, xdg: Option<&str>, home: Option<&str>| KeyLookup {
        explicit: explicit.map(PathBuf::from),
        xdg_config_home: xdg.map(PathBuf::from),
        home: home.map(PathBuf::from),
    };
    assert_eq!(lookup(Some("k.json"), Some("/x"), Some("/h")).path().unwrap(), PathBuf::from("k.json"));
    assert_eq!(lookup(None, Some("/x"), Some("/h")).path().unwrap(), PathBuf::from("/x/sgl-cloud/requester.json"));
    assert_eq!(lookup(None, None, Some("/h")).path().unwrap(), PathBuf::from("/h/.config/sgl-cloud/requester.json"));
    // A relative XDG_CONFIG_HOME is ignored, as the XDG specification says.
    assert_eq!(
        lookup(None, Some("rel"), Some("/h")).path().unwrap(),
        PathBuf::from("/h/.config/sgl-cloud/requester.json")
    );
    let error = lookup(None, None, None).path().unwrap_err().to_string();
    assert!(error.contains("--key") && error.contains("SGL_CLOUD_KEY"), "{error}");
}

#[test]
fn the_key_is_created_0600_in_a_0700_directory_and_then_reused() {
    let base = tempfile::tempdir().unwrap();
    let path = base.path().join("config/sgl-cloud/requester.json");
    let first = load_or_create(&path).unwrap();
    assert!(first.created);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let again = load_or_create(&path).unwrap();
    assert!(!again.created);
    assert_eq!(again.identity.public_key(), first.identity.public_key());

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = load_or_create(&path).unwrap();
    assert_eq!((loose.identity.public_key(), mode(&path)), (first.identity.public_key(), 0o600), "tightened");
    std::fs::write(&path, "[1, 2, 3]").unwrap();
    let error = format!("{:#}", load_or_create(&path).unwrap_err());
    assert!(error.contains("not a keypair file"), "{error}");
}
