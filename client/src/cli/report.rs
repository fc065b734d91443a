//! How failures are told to the person at the keyboard:
//!
//! ```text
//! error: <what went wrong, in a plain sentence>
//! hint: <what to do about it>
//! ```

use std::fmt;
use std::process::ExitCode;

use kith_client::identity::DEFAULT_PROFILE;
use kith_client::{ClientError, IdentityError};
use kith_protocol::frame::ErrorCode;

/// A failure found by a command itself, with advice.
#[derive(Debug)]
pub(crate) struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Prints `error` (and a hint when there is one) and gives the exit code.
pub(crate) fn print(error: &anyhow::Error) -> ExitCode {
    let output_closed = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if output_closed {
        // Output piped into e.g. `head`, which stopped reading: not a failure.
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {error:#}");
    if let Some(hint) = hint(error) {
        eprintln!("hint: {hint}");
    }
    ExitCode::FAILURE
}

/// What to do about `error`, if we know.
pub(crate) fn hint(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        if let Some(hinted) = cause.downcast_ref::<Hinted>() {
            Some(hinted.hint.clone())
        } else if let Some(e) = cause.downcast_ref::<IdentityError>() {
            identity_hint(e)
        } else if let Some(e) = cause.downcast_ref::<ClientError>() {
            client_hint(e).map(str::to_owned)
        } else {
            None
        }
    })
}

fn identity_hint(error: &IdentityError) -> Option<String> {
    let profile_flag = |profile: &kith_client::ProfileName| {
        if profile.as_str() == DEFAULT_PROFILE {
            String::new()
        } else {
            format!(" --profile {profile}")
        }
    };
    Some(match error {
        IdentityError::Missing { profile, .. } => {
            let flag = profile_flag(profile);
            format!(
                "run `kith id new{flag}` first (or `kith id import{flag}` to use a key you \
                 exported before)"
            )
        }
        IdentityError::Exists { profile, .. } => format!(
            "to keep both, choose another name with --profile; to replace it, back it up with \
             `kith id export{}` and add --force",
            profile_flag(profile)
        ),
        IdentityError::BadKeyFile { .. } => {
            "restore the file from a backup, or import your key again with `kith id import \
             --force`"
                .to_owned()
        }
        _ => return None,
    })
}

fn client_hint(error: &ClientError) -> Option<&'static str> {
    Some(match error {
        ClientError::Unreachable { .. } => {
            "check the node's address (--node, or the KITH_NODE setting) and that the node is \
             running; its admin can tell you both"
        }
        ClientError::Timeout { .. } | ClientError::Closed { .. } => "try again in a moment",
        ClientError::IncompatibleVersion { .. } => {
            "update kith, or ask the node's admin to update the node"
        }
        ClientError::Protocol(_) | ClientError::InvalidEvent(_) => {
            "tell the node's admin what happened"
        }
        ClientError::Refused { code, .. } => return refusal_hint(*code),
        ClientError::NotAGroup { .. } => {
            "use the group id that `kith group create` printed (64 characters of 0-9 and a-f)"
        }
        _ => return None,
    })
}

fn refusal_hint(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::NotRegistered | ErrorCode::AuthRequired => {
            "ask the node's admin for an invite code and run `kith register --invite CODE`"
        }
        ErrorCode::BadInvite => {
            "check that you typed the invite code exactly, or ask the node's admin for a new one"
        }
        ErrorCode::RateLimited => "wait a minute, then try again",
        ErrorCode::FromTheFuture => {
            "this computer's clock seems to be ahead; check its date and time settings"
        }
        ErrorCode::EventTooLarge | ErrorCode::BodyTooLarge => "make the message shorter",
        ErrorCode::ShuttingDown => "the node is restarting; try again in a minute",
        ErrorCode::MembersOnly => {
            "only its members can see this group; if you are one, use the identity you joined \
             with (--profile NAME)"
        }
        ErrorCode::UnknownGroup => {
            "check the group id, and that --node is the node where the group lives"
        }
        ErrorCode::NotAllowed => "see the group's rules and roles with `kith group show GROUP_ID`",
        ErrorCode::AuthFailed | ErrorCode::Internal => {
            "try again; if it keeps happening, tell the node's admin"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_missing_identity_points_to_id_new() {
        let error = anyhow::Error::from(IdentityError::Missing {
            profile: "default".parse().unwrap(),
            path: PathBuf::from("/x/identities/default.key"),
        });
        assert_eq!(
            hint(&error).unwrap(),
            "run `kith id new` first (or `kith id import` to use a key you exported before)"
        );
        let error = anyhow::Error::from(IdentityError::Missing {
            profile: "work".parse().unwrap(),
            path: PathBuf::from("/x/identities/work.key"),
        });
        assert!(hint(&error).unwrap().contains("kith id new --profile work"));
    }

    #[test]
    fn an_unregistered_key_points_to_register() {
        let error = anyhow::Error::from(ClientError::Refused {
            code: ErrorCode::NotRegistered,
            message: "not registered".into(),
        });
        assert_eq!(
            hint(&error).unwrap(),
            "ask the node's admin for an invite code and run `kith register --invite CODE`"
        );
    }

    #[test]
    fn hints_are_found_under_context() {
        let error = anyhow::Error::from(ClientError::Unreachable {
            url: "ws://h/ws".into(),
            detail: "refused".into(),
        })
        .context("could not post");
        assert!(hint(&error).unwrap().contains("KITH_NODE"));
        let error = anyhow::Error::from(Hinted::new("no text", "write something"));
        assert_eq!(hint(&error).unwrap(), "write something");
        assert_eq!(hint(&anyhow::anyhow!("plain")), None);
    }
}
