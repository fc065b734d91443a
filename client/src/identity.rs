//! Identities on disk: one secret key file per profile.
//!
//! Layout, under the Kith folder ([`KeyStore::from_env`]: `$KITH_HOME`, else the system's
//! settings folder plus `kith`, e.g. `~/.config/kith`):
//!
//! ```text
//! identities/        (mode 0700)
//!   default.key      (mode 0600) "kithsecret1…\n"
//!   work.key
//! ```
//!
//! **Invariant:** a key file is created readable by its owner only, from the first byte
//! (it is opened with mode 0600, never written first and restricted after), and an
//! existing identity is only replaced when the caller asks for it explicitly.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kith_protocol::key::KeyError;
use kith_protocol::SecretKey;

/// The environment variable naming the Kith folder.
pub const HOME_ENV: &str = "KITH_HOME";

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The longest profile name, in characters.
pub const MAX_PROFILE_LEN: usize = 64;

/// Why an identity could not be found, read or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The profile name has characters other than letters, digits, `-` and `_`.
    #[error(
        "'{0}' cannot be a profile name: use 1 to {MAX_PROFILE_LEN} letters, digits, '-' or '_'"
    )]
    BadProfileName(String),
    /// Neither `KITH_HOME` nor a settings folder is known.
    #[error("could not find a folder for Kith's settings on this computer; set {HOME_ENV} to a folder of your choice")]
    NoHome,
    /// No key file for this profile.
    #[error("there is no identity '{profile}' on this computer yet (looked for {})", .path.display())]
    Missing {
        /// The profile.
        profile: ProfileName,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A key file for this profile exists and replacing it was not asked for.
    #[error("an identity '{profile}' already exists at {}; it was kept. Replacing it loses that key for good unless you exported it", .path.display())]
    Exists {
        /// The profile.
        profile: ProfileName,
        /// The existing file.
        path: PathBuf,
    },
    /// The key file does not hold a secret key.
    #[error("the key file {} does not hold a Kith secret key: {error}", .path.display())]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with its text.
        error: KeyError,
    },
    /// Reading or writing a file or folder failed.
    #[error("could not {action} {}: {error}", .path.display())]
    Io {
        /// What was being done, e.g. "create the folder".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
}

/// A valid profile name: 1 to 64 letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileName(String);

impl ProfileName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProfileName {
    fn default() -> Self {
        ProfileName(DEFAULT_PROFILE.to_owned())
    }
}

impl FromStr for ProfileName {
    type Err = IdentityError;

    fn from_str(name: &str) -> Result<Self, IdentityError> {
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_PROFILE_LEN
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(ProfileName(name.to_owned()))
        } else {
            Err(IdentityError::BadProfileName(name.to_owned()))
        }
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key files under one Kith folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStore {
    home: PathBuf,
}

impl KeyStore {
    /// The key files under `home` (the Kith folder itself, not its `identities` folder).
    pub fn new(home: impl Into<PathBuf>) -> Self {
        KeyStore { home: home.into() }
    }

    /// The key files under `$KITH_HOME`, or under the system's settings folder plus
    /// `kith` when `KITH_HOME` is unset or empty.
    pub fn from_env() -> Result<Self, IdentityError> {
        match std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            Some(home) => Ok(KeyStore::new(home)),
            None => dirs::config_dir()
                .map(|dir| KeyStore::new(dir.join("kith")))
                .ok_or(IdentityError::NoHome),
        }
    }

    /// The Kith folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The folder holding the key files.
    pub fn identities_dir(&self) -> PathBuf {
        self.home.join("identities")
    }

    /// Where the key file of `profile` is (whether or not it exists).
    pub fn key_path(&self, profile: &ProfileName) -> PathBuf {
        self.identities_dir().join(format!("{profile}.key"))
    }

    /// Whether `profile` has a key file.
    pub fn exists(&self, profile: &ProfileName) -> bool {
        self.key_path(profile).exists()
    }

    /// Saves `key` as `profile`, readable by this user only. Refuses to replace an
    /// existing identity unless `replace` is true; a replacement is written to a new file
    /// first and then renamed over the old one, so a failure never leaves half a key.
    pub fn save(
        &self,
        profile: &ProfileName,
        key: &SecretKey,
        replace: bool,
    ) -> Result<PathBuf, IdentityError> {
        let dir = self.identities_dir();
        create_private_dir(&dir)?;
        let path = self.key_path(profile);
        let contents = format!("{}\n", key.to_text());
        if !replace {
            return match write_new_private(&path, &contents) {
                Err(IdentityError::Io { error, .. })
                    if error.kind() == io::ErrorKind::AlreadyExists =>
                {
                    Err(IdentityError::Exists {
                        profile: profile.clone(),
                        path,
                    })
                }
                other => other.map(|()| path),
            };
        }
        let temporary = dir.join(format!(
            ".{profile}.key.{}-{}.new",
            std::process::id(),
            rand::random::<u32>()
        ));
        write_new_private(&temporary, &contents)?;
        fs::rename(&temporary, &path).map_err(|error| {
            let _ = fs::remove_file(&temporary);
            IdentityError::Io {
                action: "replace the key file",
                path: path.clone(),
                error,
            }
        })?;
        Ok(path)
    }

    /// Reads the secret key of `profile`. Surrounding white space in the file is ignored.
    pub fn load(&self, profile: &ProfileName) -> Result<SecretKey, IdentityError> {
        let path = self.key_path(profile);
        let file = File::open(&path).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                IdentityError::Missing {
                    profile: profile.clone(),
                    path: path.clone(),
                }
            } else {
                IdentityError::Io {
                    action: "open the key file",
                    path: path.clone(),
                    error,
                }
            }
        })?;
        let mut text = String::new();
        // A key file is one short line; read no more than a little over that.
        file.take(4096)
            .read_to_string(&mut text)
            .map_err(|error| IdentityError::Io {
                action: "read the key file",
                path: path.clone(),
                error,
            })?;
        text.trim()
            .parse()
            .map_err(|error| IdentityError::BadKeyFile { path, error })
    }

    /// Whether the key file of `profile` is readable by its owner only. Always true on
    /// systems without Unix permissions.
    pub fn is_private(&self, profile: &ProfileName) -> Result<bool, IdentityError> {
        let path = self.key_path(profile);
        let meta = fs::metadata(&path).map_err(|error| IdentityError::Io {
            action: "look at the key file",
            path,
            error,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            Ok(meta.permissions().mode() & 0o077 == 0)
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(true)
        }
    }

    /// The profiles that have a key file, sorted by name.
    pub fn profiles(&self) -> Result<Vec<ProfileName>, IdentityError> {
        let dir = self.identities_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(IdentityError::Io {
                    action: "list the folder",
                    path: dir,
                    error,
                })
            }
        };
        let mut names: Vec<ProfileName> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(".key")?.parse().ok()
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Creates `dir` and any missing parents, new ones readable by this user only.
fn create_private_dir(dir: &Path) -> Result<(), IdentityError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|error| IdentityError::Io {
        action: "create the folder",
        path: dir.to_owned(),
        error,
    })
}

/// Writes `contents` to a file that must not exist yet, created with mode 0600.
fn write_new_private(path: &Path, contents: &str) -> Result<(), IdentityError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let io_error = |action, error| IdentityError::Io {
        action,
        path: path.to_owned(),
        error,
    };
    let mut file = options
        .open(path)
        .map_err(|e| io_error("create the key file", e))?;
    let written = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_error("write the key file", e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("kith"));
        (dir, store)
    }

    fn profile(name: &str) -> ProfileName {
        name.parse().unwrap()
    }

    #[test]
    fn profile_names_are_checked() {
        for good in ["default", "work-2", "a_b", "Zoë"] {
            assert!(good.parse::<ProfileName>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a b",
            "a/b",
            ".hidden",
            "x.key",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(
                    bad.parse::<ProfileName>(),
                    Err(IdentityError::BadProfileName(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(ProfileName::default().as_str(), DEFAULT_PROFILE);
    }

    #[test]
    fn saved_keys_load_back() {
        let (_dir, store) = store();
        let key = SecretKey::from_seed(&[1; 32]);
        let path = store.save(&profile("default"), &key, false).unwrap();
        assert_eq!(path, store.home().join("identities/default.key"));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", key.to_text()));
        let back = store.load(&profile("default")).unwrap();
        assert_eq!(back.to_seed(), key.to_seed());
        assert_eq!(store.profiles().unwrap(), vec![profile("default")]);
    }

    #[cfg(unix)]
    #[test]
    fn files_and_folders_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, store) = store();
        let p = profile("me");
        let path = store
            .save(&p, &SecretKey::from_seed(&[2; 32]), false)
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&store.identities_dir()), 0o700);
        assert_eq!(mode(store.home()), 0o700);
        assert!(store.is_private(&p).unwrap());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!store.is_private(&p).unwrap());
        // Replacing writes a fresh private file whatever the old one's mode was.
        store
            .save(&p, &SecretKey::from_seed(&[3; 32]), true)
            .unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn existing_identities_are_kept_unless_replacing() {
        let (_dir, store) = store();
        let p = profile("default");
        let first = SecretKey::from_seed(&[1; 32]);
        let second = SecretKey::from_seed(&[2; 32]);
        store.save(&p, &first, false).unwrap();
        assert!(matches!(
            store.save(&p, &second, false),
            Err(IdentityError::Exists { .. })
        ));
        assert_eq!(store.load(&p).unwrap().to_seed(), first.to_seed());
        store.save(&p, &second, true).unwrap();
        assert_eq!(store.load(&p).unwrap().to_seed(), second.to_seed());
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(store.identities_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["default.key"]);
    }

    #[test]
    fn missing_and_damaged_files_are_explained() {
        let (_dir, store) = store();
        let p = profile("nobody");
        assert!(matches!(store.load(&p), Err(IdentityError::Missing { .. })));
        assert!(store.profiles().unwrap().is_empty());
        create_private_dir(&store.identities_dir()).unwrap();
        fs::write(store.key_path(&p), "not a key\n").unwrap();
        assert!(matches!(
            store.load(&p),
            Err(IdentityError::BadKeyFile { .. })
        ));
    }

    #[test]
    fn surrounding_white_space_is_ignored() {
        let (_dir, store) = store();
        let p = profile("pasted");
        let key = SecretKey::from_seed(&[4; 32]);
        create_private_dir(&store.identities_dir()).unwrap();
        fs::write(store.key_path(&p), format!("\n  {}\t\r\n\n", key.to_text())).unwrap();
        assert_eq!(store.load(&p).unwrap().to_seed(), key.to_seed());
    }
}
