//! `kith id …`: creating, showing, exporting and importing identities.

use std::io::{IsTerminal as _, Read as _};

use anyhow::Context as _;
use kith_client::identity::DEFAULT_PROFILE;
use kith_client::{IdentityError, KeyStore, ProfileName};
use kith_protocol::SecretKey;
use serde_json::json;

use super::args::IdCommand;
use super::output::print_line;
use super::report::Hinted;

/// Carries out an `id` command.
pub(crate) fn run(command: IdCommand, profile: &ProfileName, json: bool) -> anyhow::Result<()> {
    let store = KeyStore::from_env()?;
    match command {
        IdCommand::New { force } => {
            let key = SecretKey::generate(&mut rand::rngs::OsRng);
            let path = store.save(profile, &key, force)?;
            saved(profile, &key, &path, json, "Created")
        }
        IdCommand::Show => {
            let key = load(&store, profile)?;
            if json {
                print_line(&json!({
                    "profile": profile.as_str(),
                    "public_key": key.public_key().to_string(),
                }))
            } else {
                print_line(&key.public_key())
            }
        }
        IdCommand::Export => {
            let key = load(&store, profile)?;
            eprintln!(
                "warning: this is your SECRET key. Anyone who has it can post as you. Keep it \
                 somewhere safe (a password manager, or paper in a drawer) and never send it \
                 to anyone."
            );
            print_line(&key.to_text())
        }
        IdCommand::Import { text, force } => {
            let text = match text {
                Some(text) => {
                    eprintln!(
                        "note: a key typed on the command line may be kept in your shell \
                         history; next time use `kith id import < FILE`"
                    );
                    text
                }
                None => read_input()?,
            };
            let key: SecretKey = text.trim().parse().map_err(|e| {
                Hinted::new(
                    format!("that is not a Kith secret key: {e}"),
                    "paste the whole line that `kith id export` printed; it starts with \
                     kithsecret1",
                )
            })?;
            let path = store.save(profile, &key, force)?;
            saved(profile, &key, &path, json, "Imported")
        }
    }
}

fn saved(
    profile: &ProfileName,
    key: &SecretKey,
    path: &std::path::Path,
    json: bool,
    verb: &str,
) -> anyhow::Result<()> {
    let public = key.public_key();
    if json {
        return print_line(&json!({
            "profile": profile.as_str(),
            "public_key": public.to_string(),
            "file": path.display().to_string(),
        }));
    }
    print_line(&format!(
        "{verb} your identity '{profile}'.\n\
         Your public key (share it freely, it is how others recognise you):\n  {public}\n\
         Your secret key is kept in {}.\n\
         Back it up with `kith id export`: if it is lost, so is this identity.",
        path.display()
    ))
}

/// Loads the identity of `profile`, warning if its key file is readable by others.
pub(crate) fn load(store: &KeyStore, profile: &ProfileName) -> anyhow::Result<SecretKey> {
    let key = store.load(profile)?;
    warn_if_readable(store, profile);
    Ok(key)
}

/// Loads the identity of `profile`, making one first if there is none, so that a first
/// post needs no separate step. Says on standard error when it makes one, and where the
/// key is kept.
pub(crate) fn load_or_create(store: &KeyStore, profile: &ProfileName) -> anyhow::Result<SecretKey> {
    match store.load(profile) {
        Ok(key) => {
            warn_if_readable(store, profile);
            return Ok(key);
        }
        Err(IdentityError::Missing { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let key = SecretKey::generate(&mut rand::rngs::OsRng);
    let path = match store.save(profile, &key, false) {
        Ok(path) => path,
        // Another `kith` made this identity a moment ago: use that one.
        Err(IdentityError::Exists { .. }) => return load(store, profile),
        Err(e) => return Err(e.into()),
    };
    let flag = if profile.as_str() == DEFAULT_PROFILE {
        String::new()
    } else {
        format!(" --profile {profile}")
    };
    eprintln!(
        "Made you a new identity {} (saved in {}); back it up with `kith id export{flag}`.",
        key.public_key(),
        path.display()
    );
    Ok(key)
}

/// Warns if the key file of `profile` is readable by other users of this computer.
fn warn_if_readable(store: &KeyStore, profile: &ProfileName) {
    if let Ok(false) = store.is_private(profile) {
        let path = store.key_path(profile);
        eprintln!(
            "warning: other users of this computer can read your key file {}; fix it with: \
             chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

fn read_input() -> anyhow::Result<String> {
    let mut text = String::new();
    let stdin = std::io::stdin();
    let read = if stdin.is_terminal() {
        eprintln!("Paste your secret key (kithsecret1…) and press Enter:");
        stdin.read_line(&mut text)
    } else {
        stdin.take(64 * 1024).read_to_string(&mut text)
    };
    read.context("could not read the secret key from the input")?;
    if text.trim().is_empty() {
        return Err(Hinted::new(
            "no secret key was given",
            "pipe it in, as in `kith id import < my-kith-key.txt`, or paste it after the command",
        )
        .into());
    }
    Ok(text)
}
