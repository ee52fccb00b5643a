//! Every key format of the single table, and nothing else. See `docs/data-model.md`.
//!
//! | item            | PK                         | SK                 | GSI1PK  | GSI1SK                        |
//! |-----------------|----------------------------|--------------------|---------|-------------------------------|
//! | user            | `USER#<id>`                | `USER#<id>`        | `USERS` | `USER#<created_at>#<id>`      |
//! | email marker    | `EMAIL#<lower-case email>` | same               |         |                               |
//! | team            | `TEAM#<id>`                | `TEAM#<id>`        | `TEAMS` | `TEAM#<created_at>#<id>`      |
//! | team name marker| `TEAMNAME#<lower-case name>`| same              |         |                               |
//! | membership      | `TEAM#<team id>`           | `MEMBER#<user id>` |         |                               |
//! | admin counter   | `META#ADMINS`              | same               |         |                               |
//! | login failures  | `LOGINFAIL#<email>#<window>`| same              |         |                               |

use uuid::Uuid;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI1: &str = "GSI1";

pub const USER: &str = "USER";
pub const EMAIL: &str = "EMAIL";
pub const TEAM: &str = "TEAM";
pub const TEAM_NAME: &str = "TEAMNAME";
pub const MEMBER: &str = "MEMBER";
pub const META: &str = "META";
pub const LOGIN_FAILURES: &str = "LOGINFAIL";

/// A key pair `(PK, SK)`.
pub type Key = (String, String);

fn same(pk: String) -> Key {
    (pk.clone(), pk)
}

pub fn user(id: Uuid) -> Key {
    same(format!("{USER}#{id}"))
}

pub fn users_index(created_at: &str, id: Uuid) -> Key {
    ("USERS".into(), format!("{USER}#{created_at}#{id}"))
}

pub const USERS_INDEX_PK: &str = "USERS";

/// `email` must already be normalised (trimmed, lower-case).
pub fn email(normalised: &str) -> Key {
    same(format!("{EMAIL}#{normalised}"))
}

pub fn team_pk(id: Uuid) -> String {
    format!("{TEAM}#{id}")
}

pub fn team(id: Uuid) -> Key {
    same(team_pk(id))
}

pub const TEAMS_INDEX_PK: &str = "TEAMS";

pub fn teams_index(created_at: &str, id: Uuid) -> Key {
    (TEAMS_INDEX_PK.into(), format!("{TEAM}#{created_at}#{id}"))
}

/// `name` must already be normalised (trimmed, lower-case).
pub fn team_name(normalised: &str) -> Key {
    same(format!("{TEAM_NAME}#{normalised}"))
}

pub const MEMBER_PREFIX: &str = "MEMBER#";

pub fn membership(team_id: Uuid, user_id: Uuid) -> Key {
    (team_pk(team_id), format!("{MEMBER_PREFIX}{user_id}"))
}

pub fn admin_counter() -> Key {
    same(format!("{META}#ADMINS"))
}

/// One item per email and throttling window, so a window's count starts from zero by
/// itself and old windows expire through TTL.
pub fn login_failures(normalised_email: &str, window: i64) -> Key {
    same(format!("{LOGIN_FAILURES}#{normalised_email}#{window}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats_are_stable() {
        let id = Uuid::nil();
        assert_eq!(user(id).0, format!("USER#{id}"));
        assert_eq!(membership(id, id).1, format!("MEMBER#{id}"));
        assert_eq!(email("a@b.c").0, "EMAIL#a@b.c");
        assert_eq!(team_name("ops").0, "TEAMNAME#ops");
        assert_eq!(login_failures("a@b.c", 7).0, "LOGINFAIL#a@b.c#7");
    }
}
