//! Join codes (`kith-join:GROUP:INVITATION@URL`): what `kith group invite` prints is read
//! back exactly, and anything else is refused with a reason a person can act on.

use kith_client::{JoinCode, JoinCodeError};
use kith_protocol::{EventId, GroupId};

fn group() -> GroupId {
    GroupId::from_bytes([0x3f; 32])
}

fn invite() -> EventId {
    EventId::from_bytes([0x81; 32])
}

fn code_with(url: &str) -> String {
    format!("kith-join:{}:{}@{url}", group(), invite())
}

#[test]
fn codes_round_trip() {
    for url in [
        "http://127.0.0.1:8080",
        "https://node.example.org",
        "https://node.example.org/kith",
        "http://[::1]:9000",
        "https://node.example.org/path/with@sign",
    ] {
        let code = JoinCode::new(group(), invite(), url);
        let text = code.to_string();
        assert_eq!(text, code_with(url));
        assert!(!text.contains(char::is_whitespace), "one line: {text}");
        assert_eq!(text.parse::<JoinCode>().unwrap(), code, "{text}");
    }
}

#[test]
fn white_space_around_a_pasted_code_is_ignored() {
    let text = format!("  {}\n", code_with("https://node.example.org"));
    let code: JoinCode = text.parse().unwrap();
    assert_eq!(
        (code.group, code.invite, code.node_url.as_str()),
        (group(), invite(), "https://node.example.org")
    );
}

#[test]
fn malformed_codes_are_refused_with_a_reason() {
    let (g, i) = (group().to_hex(), invite().to_hex());
    let cases: Vec<(String, JoinCodeError)> = vec![
        (String::new(), JoinCodeError::NoPrefix),
        (g.clone(), JoinCodeError::NoPrefix),
        (
            format!("KITH-JOIN:{g}:{i}@http://h:1"),
            JoinCodeError::NoPrefix,
        ),
        (format!("join:{g}:{i}@http://h:1"), JoinCodeError::NoPrefix),
        (
            format!("kith-join:{g}:{i}"),
            JoinCodeError::Shape("it has no '@' before the node address"),
        ),
        (
            format!("kith-join:{g}{i}@http://h:1"),
            JoinCodeError::Shape("it has no ':' between the group id and the invitation id"),
        ),
        (
            format!("kith-join:{g}:{i}:{i}@http://h:1"),
            JoinCodeError::Shape("it has more than two ids before the '@'"),
        ),
        (
            format!("kith-join:{}:{i}@http://h:1", &g[..63]),
            JoinCodeError::Group,
        ),
        (
            format!("kith-join:{}x:{i}@http://h:1", &g[..63]),
            JoinCodeError::Group,
        ),
        (
            format!("kith-join:{g}:{}@http://h:1", &i[1..]),
            JoinCodeError::Invite,
        ),
        (
            format!("kith-join:{g}:{i}0@http://h:1"),
            JoinCodeError::Invite,
        ),
        (
            format!("kith-join:{g}:{i}@"),
            JoinCodeError::Url {
                reason: "is missing after the '@'",
            },
        ),
        (
            format!("kith-join:{g}:{i}@ftp://h"),
            JoinCodeError::Url {
                reason: "does not start with http:// or https://",
            },
        ),
        (
            format!("kith-join:{g}:{i}@node.example.org"),
            JoinCodeError::Url {
                reason: "does not start with http:// or https://",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://"),
            JoinCodeError::Url {
                reason: "names no computer after the //",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://h:1 trailing words"),
            JoinCodeError::Url {
                reason: "contains white space or a control character",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://h:1/x?y=1"),
            JoinCodeError::Url {
                reason: "contains '?' or '#'",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://h:port"),
            JoinCodeError::Url {
                reason: "has a port that is not a number from 0 to 65535",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://h:70000/"),
            JoinCodeError::Url {
                reason: "has a port that is not a number from 0 to 65535",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://[::1"),
            JoinCodeError::Url {
                reason: "has an IPv6 address without its closing ']'",
            },
        ),
        (
            format!("kith-join:{g}:{i}@http://user@h:1"),
            JoinCodeError::Url {
                reason: "carries a user name (an '@'); give the node's address alone",
            },
        ),
        (
            format!("kith-join:{g}:{i}@https://{}", "a".repeat(300)),
            JoinCodeError::Url {
                reason: "is too long",
            },
        ),
    ];
    for (text, expected) in cases {
        let err = text.parse::<JoinCode>().unwrap_err();
        assert_eq!(err, expected, "{text}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn refusals_read_as_plain_sentences() {
    let err = "kith-join:nope".parse::<JoinCode>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "it should read kith-join:GROUP_ID:INVITATION_ID@NODE_URL, but it has no '@' before the \
         node address"
    );
    let err = code_with("ftp://h").parse::<JoinCode>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "its node address does not start with http:// or https://"
    );
    let err = format!("kith-join:{}:xyz@http://h", group())
        .parse::<JoinCode>()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "its invitation id is not 64 characters of 0-9 and a-f"
    );
}
