//! Parsing definitions, and the bootstrap and backup files.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use liftoff_eval::ClientFeatures;

/// Parses client-features JSON, refusing anything that is not an object with a `features`
/// array: `{}`, `[]` or an error document would otherwise parse as "no flags" and switch every
/// flag off.
pub(crate) fn parse_definitions(body: &str) -> Result<ClientFeatures, String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if !value
        .get("features")
        .is_some_and(serde_json::Value::is_array)
    {
        return Err("not an object with a \"features\" array".to_owned());
    }
    serde_json::from_value(value).map_err(|e| format!("not client-features JSON: {e}"))
}

/// A fingerprint of a definitions document (64-bit FNV-1a), to skip recompiling identical
/// ones. Only compared within one process, never stored.
pub(crate) fn content_hash(body: &str) -> u64 {
    body.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Why a definitions file could not be used.
#[derive(Debug)]
pub(crate) enum FileError {
    Io(io::Error),
    Invalid(String),
}

/// A definitions file, read and parsed.
pub(crate) struct LoadedFile {
    pub text: String,
    pub defs: ClientFeatures,
}

/// Reads and parses a definitions file (off the async runtime's threads).
pub(crate) async fn read_definitions(path: &Path) -> Result<LoadedFile, FileError> {
    let owned = path.to_owned();
    let bytes = tokio::task::spawn_blocking(move || fs::read(owned))
        .await
        .map_err(|e| FileError::Io(io::Error::other(e)))?
        .map_err(FileError::Io)?;
    let text = String::from_utf8(bytes).map_err(|_| FileError::Invalid("not UTF-8".to_owned()))?;
    let defs = parse_definitions(&text).map_err(FileError::Invalid)?;
    Ok(LoadedFile { text, defs })
}

/// Writes `contents` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over `path`. Readers see the old file or the new one, never a part. Creates the
/// folder if needed.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn only_client_features_objects_parse() {
        let defs =
            parse_definitions(r#"{"version":2,"features":[{"name":"a","enabled":true}]}"#).unwrap();
        assert_eq!(defs.features.len(), 1);
        assert!(parse_definitions(r#"{"features":[]}"#).is_ok());
        for garbage in [
            "",
            "not json",
            "{}",
            "[]",
            "null",
            "42",
            r#"{"type":"about:blank","status":500}"#,
            r#"{"features":null}"#,
            r#"{"features":{}}"#,
            r#"{"features":[{"enabled":true}]}"#,
            r#"{"features":[]"#,
        ] {
            assert!(parse_definitions(garbage).is_err(), "{garbage:?} parsed");
        }
    }

    #[test]
    fn hash_is_stable_and_discriminating() {
        assert_eq!(content_hash("abc"), content_hash("abc"));
        assert_ne!(content_hash("abc"), content_hash("abd"));
        // The published FNV-1a 64 test vectors.
        assert_eq!(content_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(content_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("flags.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("flags.json")]);
        // A path that is a folder cannot be replaced, and the temporary file is cleaned up.
        assert!(write_atomic(dir.path().join("sub").as_path(), b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
