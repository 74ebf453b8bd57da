//! Reading `--secret` and matching it to the manifest.

use super::*;

#[test]
fn secrets_come_inline_or_from_a_file_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "from a file").unwrap();
    let args = vec!["a=inline=with=equals".to_owned(), format!("b=@{}", file.display())];
    let secrets = parse(&args).unwrap();
    assert_eq!(secrets["a"].as_str(), "inline=with=equals");
    assert_eq!(secrets["b"].as_str(), "from a file");
    assert!(parse(&["a=1".into(), "a=2".into()]).unwrap_err().to_string().contains("twice"));
    assert!(parse(&["novalue".into()]).is_err());
    assert!(check(&["a".into(), "b".into()], &secrets).is_ok());
    let missing = check(&["a".into(), "b".into(), "c".into()], &secrets).unwrap_err();
    assert!(missing.to_string().contains("nothing was uploaded"), "{missing}");
}
