//! Teams: admin-only CRUD, unique names, pagination, membership, and the races that
//! must not leave a user pointing at a team that is gone.

mod common;

use common::{collect_pages, TestApp, TestUser};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};

const TEAMS: &str = "/api/v1/teams";

fn team_path(id: &str) -> String {
    format!("{TEAMS}/{id}")
}

fn members_path(team: &str) -> String {
    format!("{TEAMS}/{team}/members")
}

fn member_path(team: &str, user: &str) -> String {
    format!("{TEAMS}/{team}/members/{user}")
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn key_set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok())
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

/// Signs in `n` plain users at once.
async fn users(app: &TestApp, n: usize) -> Vec<TestUser> {
    join_all((0..n).map(|_| app.user())).await
}

/// `GET /teams/{id}` as `admin`, expecting 200.
async fn get_team(app: &TestApp, admin: &TestUser, id: &str) -> Value {
    app.get(&team_path(id), Some(&admin.token)).await.expect(200).json()
}

/// The user as an admin sees it now.
async fn get_user(app: &TestApp, admin: &TestUser, id: &str) -> Value {
    app.get(&format!("/api/v1/users/{id}"), Some(&admin.token))
        .await
        .expect(200)
        .json()
}

fn member_ids(team: &Value) -> BTreeSet<String> {
    ids(team["members"].as_array().expect("members")).into_iter().collect()
}

/// A cursor with one character in the middle changed.
fn tamper(cursor: &str) -> String {
    let mut chars: Vec<char> = cursor.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Every teams route, with ids that exist for `team` and `user`.
fn every_route(team: &str, user: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::POST, TEAMS.to_string(), Some(json!({ "name": "Anything" }))),
        (Method::GET, TEAMS.to_string(), None),
        (Method::GET, team_path(team), None),
        (Method::PUT, team_path(team), Some(json!({ "description": "x" }))),
        (Method::DELETE, team_path(team), None),
        (Method::POST, members_path(team), Some(json!({ "user_id": user }))),
        (Method::DELETE, member_path(team, user), None),
    ]
}

// ---------------------------------------------------------------------------------
// Access
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn every_team_route_is_401_without_a_valid_token() {
    // GIVEN a team and a user
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = app.team(&admin, "Guarded").await;
    let altered = format!("{}x", admin.token);
    for (method, path, body) in every_route(&team, &user.id) {
        // WHEN called without a token, or with a forged one
        for token in [None, Some("not.a.jwt"), Some(altered.as_str())] {
            let reply = app.send(method.clone(), &path, token, body.clone()).await;
            // THEN 401 with a Bearer challenge
            assert_eq!(
                reply.status.as_u16(),
                401,
                "{method} {path} with {token:?}: {}",
                reply.text
            );
            let challenge = reply.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{method} {path}: {challenge:?}");
        }
    }
    // AND nothing was changed
    let team_now = get_team(&app, &admin, &team).await;
    assert_eq!(team_now["member_count"], 0);
    assert_eq!(team_now["description"], "");
}

#[tokio::test]
async fn every_team_route_is_403_for_non_admins_even_their_own_team() {
    // GIVEN a plain user who is a member of a team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let other = app.user().await;
    let team = app.team(&admin, "Mine").await;
    app.add_member(&admin, &team, &user).await.expect(200);
    // WHEN they call any teams route, even on their own team
    for (method, path, body) in every_route(&team, &user.id)
        .into_iter()
        .chain(every_route(&team, &other.id))
    {
        let reply = app.send(method.clone(), &path, Some(&user.token), body).await;
        // THEN 403
        assert_eq!(reply.status.as_u16(), 403, "{method} {path}: {}", reply.text);
    }
    // AND nothing was changed
    let team_now = get_team(&app, &admin, &team).await;
    assert_eq!(member_ids(&team_now), BTreeSet::from([user.id.clone()]));
    assert_eq!(team_now["description"], "");
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_team_returns_201_with_the_whole_team() {
    // GIVEN an admin
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // WHEN they create a team
    let body = app
        .post(
            TEAMS,
            Some(&admin.token),
            json!({ "name": "Platform", "description": "Runs the platform" }),
        )
        .await
        .expect(201)
        .json();
    // THEN the answer is the team
    assert_eq!(
        keys_of(&body),
        key_set(&[
            "id",
            "name",
            "description",
            "created_by",
            "created_at",
            "updated_at",
            "member_count",
            // Added by the cost issue: `null` until a budget is set.
            "budget"
        ])
    );
    assert_eq!(body["budget"], Value::Null);
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert_eq!(body["name"], "Platform");
    assert_eq!(body["description"], "Runs the platform");
    assert_eq!(body["created_by"], admin.id.as_str());
    assert!(is_rfc3339(&body["created_at"]), "{body}");
    assert!(is_rfc3339(&body["updated_at"]), "{body}");
    assert_eq!(body["member_count"], 0);
    // AND it can be read back, with no members
    let read = get_team(&app, &admin, body["id"].as_str().unwrap()).await;
    assert_eq!(read["members"], json!([]));
    for key in keys_of(&body) {
        assert_eq!(read[&key], body[&key], "{key}");
    }
}

#[tokio::test]
async fn description_is_optional() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // WHEN a team is created with a name only
    let body = app
        .post(TEAMS, Some(&admin.token), json!({ "name": "Bare" }))
        .await
        .expect(201)
        .json();
    // THEN it has an empty description
    assert_eq!(body["description"], "");
}

#[tokio::test]
async fn team_names_are_trimmed() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // WHEN a name comes with surrounding whitespace
    let body = app
        .post(TEAMS, Some(&admin.token), json!({ "name": "  \t Data Eng \n " }))
        .await
        .expect(201)
        .json();
    // THEN it is stored trimmed
    assert_eq!(body["name"], "Data Eng");
    assert_eq!(
        get_team(&app, &admin, body["id"].as_str().unwrap()).await["name"],
        "Data Eng"
    );
    // AND the untrimmed form counts as the same name
    app.post(TEAMS, Some(&admin.token), json!({ "name": "Data Eng  " }))
        .await
        .expect(409);
}

#[tokio::test]
async fn duplicate_team_names_are_409_case_insensitively() {
    // GIVEN teams "Platform" and "Équipe"
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.team(&admin, "Platform").await;
    app.team(&admin, "Équipe").await;
    // WHEN the same names are created again in any case
    for name in ["Platform", "platform", "PLATFORM", "  pLaTfOrM ", "équipe", "ÉQUIPE"] {
        let reply = app.post(TEAMS, Some(&admin.token), json!({ "name": name })).await;
        // THEN 409
        assert_eq!(reply.status.as_u16(), 409, "{name}: {}", reply.text);
        assert_eq!(reply.json()["status"], 409);
    }
    // AND only the two teams exist
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_one_name_let_exactly_one_win() {
    // GIVEN an admin
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // WHEN eight creations of one name (in different cases) race
    let names = [
        "Racers", "racers", "RACERS", "Racers", "rAcErS", "Racers ", "racers", "RACERS",
    ];
    let replies = join_all(
        names
            .iter()
            .map(|name| app.post(TEAMS, Some(&admin.token), json!({ "name": name }))),
    )
    .await;
    // THEN exactly one is created and every other one is a 409
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    // AND exactly one team exists
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
}

#[tokio::test]
async fn team_bodies_with_unknown_fields_are_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for body in [
        json!({ "name": "A", "id": "6f1c0b8e-3f55-4c2e-9d0a-1b2c3d4e5f60" }),
        json!({ "name": "A", "member_count": 5 }),
        json!({ "name": "A", "created_by": admin.id }),
    ] {
        // WHEN a body carries a field the API does not take
        let reply = app.post(TEAMS, Some(&admin.token), body.clone()).await;
        // THEN 422 and no team
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text);
        assert!(reply.json()["errors"].is_array(), "{}", reply.text);
    }
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn team_bodies_with_wrong_types_are_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for body in [
        json!({ "name": 5 }),
        json!({ "name": null }),
        json!({ "name": ["Platform"] }),
        json!({ "name": { "text": "Platform" } }),
        json!({ "name": true }),
        json!({ "name": "Platform", "description": 7 }),
        json!({ "name": "Platform", "description": ["x"] }),
        json!({}),
        json!(["Platform"]),
        json!("Platform"),
    ] {
        // WHEN the body has the wrong shape
        let reply = app.post(TEAMS, Some(&admin.token), body.clone()).await;
        // THEN 422
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text);
    }
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn json_arrays_are_not_team_or_member_objects() {
    // GIVEN a team and a user
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = app.team(&admin, "Objects only").await;
    // WHEN bodies are arrays holding the fields in order
    let create = app
        .post(TEAMS, Some(&admin.token), json!(["Sneaky", "by position"]))
        .await;
    let update = app
        .put(&team_path(&team), Some(&admin.token), json!(["Renamed", "x"]))
        .await;
    let add = app
        .post(&members_path(&team), Some(&admin.token), json!([user.id]))
        .await;
    // THEN each is a 422 and nothing changed
    let statuses = [create.status.as_u16(), update.status.as_u16(), add.status.as_u16()];
    assert_eq!(statuses, [422, 422, 422], "create, update, add member");
    let read = get_team(&app, &admin, &team).await;
    assert_eq!(read["name"], "Objects only");
    assert_eq!(read["member_count"], 0);
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn empty_or_whitespace_team_names_are_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for name in ["", " ", "   \t\n  ", "\u{3000}"] {
        // WHEN the name is empty once trimmed
        let reply = app.post(TEAMS, Some(&admin.token), json!({ "name": name })).await;
        // THEN 422 naming the field
        assert_eq!(reply.status.as_u16(), 422, "{name:?}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["errors"][0]["field"], "name", "{body}");
    }
}

#[tokio::test]
async fn team_names_are_limited_to_100_characters_counted_as_unicode_chars() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // WHEN names of exactly 100 characters are sent (ASCII, two-byte, four-byte)
    for name in [
        "a".repeat(100),
        "é".repeat(100),
        "🦀".repeat(100),
        format!("  {}  ", "b".repeat(100)),
    ] {
        let reply = app.post(TEAMS, Some(&admin.token), json!({ "name": name })).await;
        // THEN they are accepted
        assert_eq!(reply.status.as_u16(), 201, "{name:?}: {}", reply.text);
        assert_eq!(reply.json()["name"].as_str().unwrap(), name.trim());
    }
    // WHEN names of 101 characters are sent
    for name in ["c".repeat(101), "ü".repeat(101), "🦀".repeat(101)] {
        let reply = app.post(TEAMS, Some(&admin.token), json!({ "name": name })).await;
        // THEN 422
        assert_eq!(
            reply.status.as_u16(),
            422,
            "{} chars: {}",
            name.chars().count(),
            reply.text
        );
        assert_eq!(reply.json()["errors"][0]["field"], "name");
    }
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
}

// ---------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn listing_teams_returns_items_and_a_null_cursor_on_the_last_page() {
    // GIVEN three teams
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut created = BTreeSet::new();
    for name in ["One", "Two", "Three"] {
        created.insert(app.team(&admin, name).await);
    }
    // WHEN the admin lists teams
    let list = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    // THEN the answer is {items, next_cursor} with every team as a team view
    assert_eq!(keys_of(&list), key_set(&["items", "next_cursor"]));
    assert!(list["next_cursor"].is_null());
    let items = list["items"].as_array().unwrap();
    assert_eq!(ids(items).into_iter().collect::<BTreeSet<_>>(), created);
    for item in items {
        assert_eq!(
            keys_of(item),
            key_set(&[
                "id",
                "name",
                "description",
                "created_by",
                "created_at",
                "updated_at",
                "member_count",
                // Added by the cost issue.
                "budget"
            ])
        );
    }
}

#[tokio::test]
async fn the_default_page_size_is_50() {
    // GIVEN 51 teams
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for chunk in (0..51).collect::<Vec<_>>().chunks(10) {
        let names: Vec<String> = chunk.iter().map(|i| format!("Team {i}")).collect();
        join_all(names.iter().map(|name| app.team(&admin, name))).await;
    }
    // WHEN the list is asked for without a limit
    let first = app.get(TEAMS, Some(&admin.token)).await.expect(200).json();
    // THEN 50 come back, with a cursor to the last one
    assert_eq!(first["items"].as_array().unwrap().len(), 50);
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let second = app
        .get(&format!("{TEAMS}?cursor={cursor}"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn list_limit_must_be_a_whole_number_from_1_to_100() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.team(&admin, "One").await;
    app.team(&admin, "Two").await;
    // WHEN the limit is out of range or not a number
    for limit in ["0", "101", "abc", "-1", "1.5", "", "1e2", "99999999999999999999999"] {
        let reply = app.get(&format!("{TEAMS}?limit={limit}"), Some(&admin.token)).await;
        // THEN 400
        assert_eq!(reply.status.as_u16(), 400, "limit={limit}: {}", reply.text);
    }
    // AND the bounds themselves work
    let one = app
        .get(&format!("{TEAMS}?limit=1"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert!(one["next_cursor"].is_string());
    let hundred = app
        .get(&format!("{TEAMS}?limit=100"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(hundred["items"].as_array().unwrap().len(), 2);
    assert!(hundred["next_cursor"].is_null());
}

#[tokio::test]
async fn paging_through_teams_returns_every_team_exactly_once_in_a_stable_order() {
    // GIVEN seven teams
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut created = BTreeSet::new();
    for i in 0..7 {
        created.insert(app.team(&admin, &format!("Paged {i}")).await);
    }
    // WHEN they are listed three at a time
    let (items, pages) = collect_pages(&app, TEAMS, &admin.token, 3).await;
    // THEN three pages hold every team exactly once
    assert_eq!(pages, 3);
    let listed = ids(&items);
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), created);
    // AND the order is the same every time, and the same as one big page
    let (again, _) = collect_pages(&app, TEAMS, &admin.token, 3).await;
    assert_eq!(ids(&again), listed);
    let (whole, _) = collect_pages(&app, TEAMS, &admin.token, 100).await;
    assert_eq!(ids(&whole), listed);
}

#[tokio::test]
async fn a_tampered_team_cursor_is_400() {
    // GIVEN a real cursor
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for i in 0..3 {
        app.team(&admin, &format!("T{i}")).await;
    }
    let page = app
        .get(&format!("{TEAMS}?limit=1"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();
    // (the real one works)
    app.get(&format!("{TEAMS}?limit=1&cursor={cursor}"), Some(&admin.token))
        .await
        .expect(200);
    // WHEN one character of it is changed, or it is cut short or extended
    for bad in [
        tamper(&cursor),
        cursor[..cursor.len() - 2].to_string(),
        format!("{cursor}AA"),
    ] {
        let reply = app
            .get(&format!("{TEAMS}?limit=1&cursor={bad}"), Some(&admin.token))
            .await;
        // THEN 400
        assert_eq!(reply.status.as_u16(), 400, "{bad}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_cursor_from_another_list_is_400_for_teams() {
    // GIVEN cursors of the users list and of a team's members list
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let members = users(&app, 3).await;
    let team = app.team(&admin, "Crew").await;
    app.team(&admin, "Other").await;
    app.team(&admin, "Third").await;
    for m in &members {
        app.add_member(&admin, &team, m).await.expect(200);
    }
    let from_users = app
        .get("/api/v1/users?limit=1", Some(&admin.token))
        .await
        .expect(200)
        .json()["next_cursor"]
        .as_str()
        .expect("users cursor")
        .to_string();
    let from_members = app
        .get("/api/v1/users/me/team/members?limit=1", Some(&members[0].token))
        .await
        .expect(200)
        .json()["next_cursor"]
        .as_str()
        .expect("members cursor")
        .to_string();
    let from_team_filter = app
        .get(&format!("/api/v1/users?team_id={team}&limit=1"), Some(&admin.token))
        .await
        .expect(200)
        .json()["next_cursor"]
        .as_str()
        .expect("team filter cursor")
        .to_string();
    // WHEN they are used to page through teams
    for cursor in [from_users, from_members, from_team_filter] {
        let reply = app
            .get(&format!("{TEAMS}?limit=1&cursor={cursor}"), Some(&admin.token))
            .await;
        // THEN 400
        assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    }
}

#[tokio::test]
async fn a_garbage_team_cursor_is_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.team(&admin, "One").await;
    let long = "A".repeat(3000);
    let raw_key = "eyJQSyI6eyJTIjoiVEVBTSMxIn19"; // base64 of {"PK":{"S":"TEAM#1"}}
    for cursor in ["garbage", "%21%21%21", "AAAA", "null", raw_key, long.as_str()] {
        // WHEN the cursor is not one the API issued
        let reply = app.get(&format!("{TEAMS}?cursor={cursor}"), Some(&admin.token)).await;
        // THEN 400 naming the cursor
        assert_eq!(reply.status.as_u16(), 400, "{cursor}: {}", reply.text);
    }
}

// ---------------------------------------------------------------------------------
// Get
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_team_is_shown_with_its_members() {
    // GIVEN a team with a plain member and an admin member
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let other_admin = app.admin().await;
    let member = app.user().await;
    let outsider = app.user().await;
    let team = app.team(&admin, "Shown").await;
    app.add_member(&admin, &team, &member).await.expect(200);
    app.add_member(&admin, &team, &other_admin).await.expect(200);
    // WHEN the team is read
    let body = get_team(&app, &admin, &team).await;
    // THEN it carries its members and nobody else
    assert_eq!(body["member_count"], 2);
    assert_eq!(
        member_ids(&body),
        BTreeSet::from([member.id.clone(), other_admin.id.clone()])
    );
    assert!(!member_ids(&body).contains(&outsider.id));
    for m in body["members"].as_array().unwrap() {
        assert_eq!(
            keys_of(m),
            key_set(&["id", "email", "is_admin", "team_id", "created_at"])
        );
        assert_eq!(m["team_id"], team.as_str());
        assert!(is_rfc3339(&m["created_at"]));
        let expected = if m["id"] == member.id.as_str() {
            &member
        } else {
            &other_admin
        };
        assert_eq!(m["email"], expected.email.as_str());
        assert_eq!(m["is_admin"], m["id"] == other_admin.id.as_str());
    }
}

#[tokio::test]
async fn unknown_or_malformed_team_ids_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "123", "%20"] {
        // WHEN a team route is called with an id that is no team
        for (method, path, body) in every_route(id, &user.id).into_iter().skip(2) {
            let reply = app.send(method.clone(), &path, Some(&admin.token), body).await;
            // THEN 404
            assert_eq!(reply.status.as_u16(), 404, "{method} {path}: {}", reply.text);
        }
    }
    // AND the user was not touched
    assert!(get_user(&app, &admin, &user.id).await["team_id"].is_null());
}

// ---------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn updating_a_team_changes_what_was_sent_and_nothing_else() {
    // GIVEN a team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let created = app
        .post(
            TEAMS,
            Some(&admin.token),
            json!({ "name": "Before", "description": "old" }),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_str().unwrap();
    app.clock.advance(time::Duration::minutes(1));
    // WHEN only the description is changed
    let body = app
        .put(&team_path(id), Some(&admin.token), json!({ "description": "  new  " }))
        .await
        .expect(200)
        .json();
    // THEN the description changes (trimmed), the name stays, updated_at moves
    assert_eq!(body["description"], "new");
    assert_eq!(body["name"], "Before");
    assert_eq!(body["created_at"], created["created_at"]);
    assert_eq!(body["created_by"], created["created_by"]);
    assert!(body["updated_at"].as_str().unwrap() > created["updated_at"].as_str().unwrap());
    // WHEN only the name is changed
    let body = app
        .put(&team_path(id), Some(&admin.token), json!({ "name": "  After " }))
        .await
        .expect(200)
        .json();
    // THEN the name changes (trimmed), the description stays
    assert_eq!(body["name"], "After");
    assert_eq!(body["description"], "new");
    // AND a read agrees
    let read = get_team(&app, &admin, id).await;
    assert_eq!(read["name"], "After");
    assert_eq!(read["description"], "new");
    // WHEN nothing is sent THEN the team is returned unchanged
    let same = app
        .put(&team_path(id), Some(&admin.token), json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(same["name"], "After");
    assert_eq!(same["description"], "new");
}

#[tokio::test]
async fn updates_are_validated_like_creations() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.team(&admin, "Valid").await;
    for body in [
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": 5 }),
        json!({ "description": false }),
        json!({ "name": "Fine", "colour": "red" }),
        json!({ "member_count": 10 }),
        json!(["name"]),
    ] {
        // WHEN an update is invalid
        let reply = app.put(&team_path(&id), Some(&admin.token), body.clone()).await;
        // THEN 422
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text);
    }
    // AND the team is unchanged
    let read = get_team(&app, &admin, &id).await;
    assert_eq!(read["name"], "Valid");
    assert_eq!(read["member_count"], 0);
}

#[tokio::test]
async fn renaming_onto_a_taken_name_is_409() {
    // GIVEN teams "Alpha" and "Beta"
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.team(&admin, "Alpha").await;
    let beta = app.team(&admin, "Beta").await;
    // WHEN Beta is renamed to Alpha in any case
    for name in ["Alpha", "alpha", " ALPHA "] {
        let reply = app
            .put(&team_path(&beta), Some(&admin.token), json!({ "name": name }))
            .await;
        // THEN 409
        assert_eq!(reply.status.as_u16(), 409, "{name}: {}", reply.text);
    }
    // AND Beta is still Beta, and still owns its name
    assert_eq!(get_team(&app, &admin, &beta).await["name"], "Beta");
    app.post(TEAMS, Some(&admin.token), json!({ "name": "beta" }))
        .await
        .expect(409);
}

#[tokio::test]
async fn renaming_a_team_to_its_own_name_in_another_case_works() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.team(&admin, "devops").await;
    // WHEN the team is renamed to a different case of its own name
    let body = app
        .put(&team_path(&id), Some(&admin.token), json!({ "name": "DevOps" }))
        .await
        .expect(200)
        .json();
    // THEN it takes the new spelling
    assert_eq!(body["name"], "DevOps");
    assert_eq!(get_team(&app, &admin, &id).await["name"], "DevOps");
    // AND the name is still reserved
    app.post(TEAMS, Some(&admin.token), json!({ "name": "DEVOPS" }))
        .await
        .expect(409);
    // AND renaming to exactly the same name is fine too
    app.put(&team_path(&id), Some(&admin.token), json!({ "name": "DevOps" }))
        .await
        .expect(200);
}

#[tokio::test]
async fn after_a_rename_the_old_name_is_free_and_the_new_one_taken() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.team(&admin, "Old Name").await;
    // WHEN the team is renamed
    app.put(&team_path(&id), Some(&admin.token), json!({ "name": "New Name" }))
        .await
        .expect(200);
    // THEN another team can take the old name
    let other = app.team(&admin, "old name").await;
    assert_ne!(other, id);
    // AND nobody can take the new one
    app.post(TEAMS, Some(&admin.token), json!({ "name": "NEW NAME" }))
        .await
        .expect(409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_renames_onto_one_name_let_exactly_one_win() {
    // GIVEN four teams
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut teams = Vec::new();
    for i in 0..4 {
        teams.push(app.team(&admin, &format!("Start {i}")).await);
    }
    // WHEN all of them are renamed to one name at once
    let paths: Vec<String> = teams.iter().map(|id| team_path(id)).collect();
    let replies = join_all(
        paths
            .iter()
            .map(|path| app.put(path, Some(&admin.token), json!({ "name": "Winner" }))),
    )
    .await;
    // THEN exactly one rename succeeds, the rest are 409
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    // AND exactly one team is called Winner; the others kept their names
    let (items, _) = collect_pages(&app, TEAMS, &admin.token, 100).await;
    let names: Vec<&str> = items.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "Winner").count(), 1, "{names:?}");
    assert_eq!(names.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_different_fields_are_both_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for round in 0..5 {
        // GIVEN a team
        let id = app.team(&admin, &format!("Round {round}")).await;
        // WHEN one admin changes the description while another renames it
        let path = team_path(&id);
        let new_name = format!("Renamed {round}");
        let (a, b) = tokio::join!(
            app.put(&path, Some(&admin.token), json!({ "description": "d1" })),
            app.put(&path, Some(&admin.token), json!({ "name": new_name })),
        );
        // THEN both succeed
        a.expect(200);
        b.expect(200);
        // AND the team has both changes
        let read = get_team(&app, &admin, &id).await;
        assert_eq!(read["description"], "d1", "round {round}: {read}");
        assert_eq!(read["name"], new_name.as_str(), "round {round}: {read}");
        // AND the old name is free, the new one taken
        app.team(&admin, &format!("round {round}")).await;
        app.post(TEAMS, Some(&admin.token), json!({ "name": new_name }))
            .await
            .expect(409);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_description_updates_never_fail_and_one_of_them_wins() {
    // GIVEN a team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.team(&admin, "Contended").await;
    let path = team_path(&id);
    // WHEN ten description updates race
    let descriptions: Vec<String> = (0..10).map(|i| format!("description {i}")).collect();
    let replies = join_all(
        descriptions
            .iter()
            .map(|d| app.put(&path, Some(&admin.token), json!({ "description": d }))),
    )
    .await;
    // THEN each is a 200 or a 409, never a server error
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    // AND the team ends with the description of one that succeeded
    let succeeded: HashSet<&str> = descriptions
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| **s == 200)
        .map(|(d, _)| d.as_str())
        .collect();
    let read = get_team(&app, &admin, &id).await;
    let fin = read["description"].as_str().unwrap();
    assert!(succeeded.contains(fin), "final {fin:?} not among {succeeded:?}");
    assert_eq!(read["name"], "Contended");
}

// ---------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_team_is_204_and_then_it_is_gone() {
    // GIVEN two teams
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let doomed = app.team(&admin, "Doomed").await;
    let kept = app.team(&admin, "Kept").await;
    // WHEN one is deleted
    let reply = app.delete(&team_path(&doomed), Some(&admin.token)).await.expect(204);
    assert!(reply.text.is_empty());
    // THEN it cannot be read, changed or deleted again
    app.get(&team_path(&doomed), Some(&admin.token)).await.expect(404);
    app.put(&team_path(&doomed), Some(&admin.token), json!({ "description": "x" }))
        .await
        .expect(404);
    app.delete(&team_path(&doomed), Some(&admin.token)).await.expect(404);
    // AND only the other one is listed
    let (items, _) = collect_pages(&app, TEAMS, &admin.token, 10).await;
    assert_eq!(ids(&items), vec![kept]);
}

#[tokio::test]
async fn deleting_a_team_releases_its_members() {
    // GIVEN a team with two members, and another team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let members = users(&app, 2).await;
    let team = app.team(&admin, "Dissolved").await;
    let next = app.team(&admin, "Next").await;
    for m in &members {
        app.add_member(&admin, &team, m).await.expect(200);
    }
    // WHEN the team is deleted
    app.delete(&team_path(&team), Some(&admin.token)).await.expect(204);
    for m in &members {
        // THEN its members have no team
        assert!(get_user(&app, &admin, &m.id).await["team_id"].is_null());
        app.get("/api/v1/users/me/team", Some(&m.token)).await.expect(404);
        app.get("/api/v1/users/me/team/members", Some(&m.token))
            .await
            .expect(404);
        // AND they can join another team
        app.add_member(&admin, &next, m).await.expect(200);
    }
    // AND the deleted team has no members left behind
    let left = app
        .get(&format!("/api/v1/users?team_id={team}"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(left["items"], json!([]));
    assert_eq!(get_team(&app, &admin, &next).await["member_count"], 2);
}

#[tokio::test]
async fn a_deleted_teams_name_is_free_again() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.team(&admin, "Phoenix").await;
    app.delete(&team_path(&id), Some(&admin.token)).await.expect(204);
    // WHEN a new team takes the name
    let again = app.team(&admin, "PHOENIX").await;
    // THEN it is a new team
    assert_ne!(again, id);
    assert_eq!(get_team(&app, &admin, &again).await["name"], "PHOENIX");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_team_while_a_member_is_added_leaves_no_one_in_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let second_admin = app.admin().await;
    for round in 0..8 {
        // GIVEN a team and a user
        let team = app.team(&admin, &format!("Racing {round}")).await;
        let user = app.user().await;
        // WHEN one admin deletes the team while another adds the user to it
        let path = team_path(&team);
        let (deleted, added) = tokio::join!(
            app.delete(&path, Some(&admin.token)),
            app.add_member(&second_admin, &team, &user),
        );
        // THEN the delete succeeds and the add either succeeded before or found no team
        deleted.expect(204);
        let added = added.status.as_u16();
        assert!(added == 200 || added == 404, "round {round}: add gave {added}");
        // AND in every outcome the user is in no team
        assert!(
            get_user(&app, &admin, &user.id).await["team_id"].is_null(),
            "round {round}: add gave {added}"
        );
        app.get("/api/v1/users/me/team", Some(&user.token)).await.expect(404);
        let left = app
            .get(&format!("/api/v1/users?team_id={team}"), Some(&admin.token))
            .await
            .expect(200)
            .json();
        assert_eq!(left["items"], json!([]), "round {round}");
        // AND adding later finds no team
        app.add_member(&admin, &team, &user).await.expect(404);
        assert!(get_user(&app, &admin, &user.id).await["team_id"].is_null());
    }
}

// ---------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn adding_a_member_returns_the_user_in_the_team() {
    // GIVEN a team and a user
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = app.team(&admin, "Joinable").await;
    // WHEN the user is added
    let body = app.add_member(&admin, &team, &user).await.expect(200).json();
    // THEN the answer is the user, now in the team
    assert_eq!(body["id"], user.id.as_str());
    assert_eq!(body["email"], user.email.as_str());
    assert_eq!(body["team_id"], team.as_str());
    assert_eq!(body["is_admin"], false);
    // AND the user, the team and the member count agree
    assert_eq!(get_user(&app, &admin, &user.id).await["team_id"], team.as_str());
    let read = get_team(&app, &admin, &team).await;
    assert_eq!(read["member_count"], 1);
    assert_eq!(member_ids(&read), BTreeSet::from([user.id.clone()]));
    let mine = app
        .get("/api/v1/users/me/team", Some(&user.token))
        .await
        .expect(200)
        .json();
    assert_eq!(mine["id"], team.as_str());
}

#[tokio::test]
async fn adding_to_an_unknown_team_or_an_unknown_user_is_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = app.team(&admin, "Real").await;
    // WHEN the team does not exist THEN 404, and the user stays teamless
    let unknown_team = uuid::Uuid::new_v4().to_string();
    app.add_member(&admin, &unknown_team, &user).await.expect(404);
    assert!(get_user(&app, &admin, &user.id).await["team_id"].is_null());
    // WHEN the user does not exist THEN 404, and the team stays empty
    app.post(
        &members_path(&team),
        Some(&admin.token),
        json!({ "user_id": uuid::Uuid::new_v4() }),
    )
    .await
    .expect(404);
    assert_eq!(get_team(&app, &admin, &team).await["member_count"], 0);
}

#[tokio::test]
async fn add_member_bodies_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = app.team(&admin, "Strict").await;
    for body in [
        json!({}),
        json!({ "user_id": "not-a-uuid" }),
        json!({ "user_id": 5 }),
        json!({ "user_id": null }),
        json!({ "user_id": user.id, "role": "lead" }),
    ] {
        // WHEN the body is invalid
        let reply = app.post(&members_path(&team), Some(&admin.token), body.clone()).await;
        // THEN 422
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text);
    }
    assert_eq!(get_team(&app, &admin, &team).await["member_count"], 0);
}

#[tokio::test]
async fn adding_a_member_of_another_team_is_409() {
    // GIVEN a user in team A
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let a = app.team(&admin, "A").await;
    let b = app.team(&admin, "B").await;
    app.add_member(&admin, &a, &user).await.expect(200);
    // WHEN they are added to team B
    app.add_member(&admin, &b, &user).await.expect(409);
    // THEN they are still in A only
    assert_eq!(get_user(&app, &admin, &user.id).await["team_id"], a.as_str());
    assert_eq!(get_team(&app, &admin, &a).await["member_count"], 1);
    let read_b = get_team(&app, &admin, &b).await;
    assert_eq!(read_b["member_count"], 0);
    assert_eq!(read_b["members"], json!([]));
}

#[tokio::test]
async fn adding_a_member_twice_to_the_same_team_is_harmless() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = app.team(&admin, "Twice").await;
    // WHEN the same user is added twice, one after the other and then three at once
    app.add_member(&admin, &team, &user).await.expect(200);
    let again = app.add_member(&admin, &team, &user).await.expect(200).json();
    assert_eq!(again["team_id"], team.as_str());
    let replies = join_all((0..3).map(|_| app.add_member(&admin, &team, &user))).await;
    for r in replies {
        r.expect(200);
    }
    // THEN they are counted once
    let read = get_team(&app, &admin, &team).await;
    assert_eq!(read["member_count"], 1);
    assert_eq!(read["members"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_adds_to_the_same_team_count_the_user_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for round in 0..5 {
        // GIVEN a fresh team and user
        let team = app.team(&admin, &format!("Same {round}")).await;
        let user = app.user().await;
        // WHEN the user is added four times at once
        let replies = join_all((0..4).map(|_| app.add_member(&admin, &team, &user))).await;
        // THEN all succeed and the user is counted once
        for r in replies {
            r.expect(200);
        }
        let read = get_team(&app, &admin, &team).await;
        assert_eq!(read["member_count"], 1, "round {round}: {read}");
        assert_eq!(member_ids(&read), BTreeSet::from([user.id.clone()]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_adding_one_user_to_two_teams_at_once_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    for round in 0..8 {
        // GIVEN two teams and a teamless user
        let a = app.team(&first, &format!("Left {round}")).await;
        let b = app.team(&first, &format!("Right {round}")).await;
        let user = app.user().await;
        // WHEN two admins add the user to the two teams at once
        let (ra, rb) = tokio::join!(app.add_member(&first, &a, &user), app.add_member(&second, &b, &user));
        // THEN exactly one wins and the other is a 409
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        let (winner, loser) = if ra.status.as_u16() == 200 { (&a, &b) } else { (&b, &a) };
        // AND the user, both member lists and both counts agree
        assert_eq!(get_user(&app, &first, &user.id).await["team_id"], winner.as_str());
        let won = get_team(&app, &first, winner).await;
        assert_eq!(won["member_count"], 1, "round {round}");
        assert_eq!(member_ids(&won), BTreeSet::from([user.id.clone()]));
        let lost = get_team(&app, &first, loser).await;
        assert_eq!(lost["member_count"], 0, "round {round}");
        assert_eq!(lost["members"], json!([]));
    }
}

#[tokio::test]
async fn removing_a_member_is_204_and_decrements_the_count() {
    // GIVEN a team with two members
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let members = users(&app, 2).await;
    let team = app.team(&admin, "Shrinking").await;
    for m in &members {
        app.add_member(&admin, &team, m).await.expect(200);
    }
    // WHEN one is removed
    let reply = app
        .delete(&member_path(&team, &members[0].id), Some(&admin.token))
        .await
        .expect(204);
    assert!(reply.text.is_empty());
    // THEN the count and the member list drop by one
    let read = get_team(&app, &admin, &team).await;
    assert_eq!(read["member_count"], 1);
    assert_eq!(member_ids(&read), BTreeSet::from([members[1].id.clone()]));
    // AND the removed user has no team
    assert!(get_user(&app, &admin, &members[0].id).await["team_id"].is_null());
    app.get("/api/v1/users/me/team", Some(&members[0].token))
        .await
        .expect(404);
    // AND removing them again is 404 and changes nothing
    app.delete(&member_path(&team, &members[0].id), Some(&admin.token))
        .await
        .expect(404);
    assert_eq!(get_team(&app, &admin, &team).await["member_count"], 1);
    // AND they can be added back
    app.add_member(&admin, &team, &members[0]).await.expect(200);
    assert_eq!(get_team(&app, &admin, &team).await["member_count"], 2);
}

#[tokio::test]
async fn removing_someone_who_is_not_a_member_is_404() {
    // GIVEN a user in team A, a user in no team, and team B
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let in_a = app.user().await;
    let loner = app.user().await;
    let a = app.team(&admin, "A").await;
    let b = app.team(&admin, "B").await;
    app.add_member(&admin, &a, &in_a).await.expect(200);
    // WHEN someone who is not in B is removed from B
    let unknown = uuid::Uuid::new_v4().to_string();
    for user in [in_a.id.as_str(), loner.id.as_str(), unknown.as_str(), "not-a-uuid"] {
        // THEN 404
        app.delete(&member_path(&b, user), Some(&admin.token)).await.expect(404);
    }
    // AND the member of A is untouched
    assert_eq!(get_user(&app, &admin, &in_a.id).await["team_id"], a.as_str());
    assert_eq!(get_team(&app, &admin, &a).await["member_count"], 1);
    assert_eq!(get_team(&app, &admin, &b).await["member_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_removals_of_one_member_decrement_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let members = users(&app, 2).await;
    let team = app.team(&admin, "Once").await;
    for m in &members {
        app.add_member(&admin, &team, m).await.expect(200);
    }
    // WHEN one member is removed four times at once
    let path = member_path(&team, &members[0].id);
    let replies = join_all((0..4).map(|_| app.delete(&path, Some(&admin.token)))).await;
    // THEN one removal is a 204, the rest 404
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 204 || *s == 404), "{statuses:?}");
    // AND the count drops by exactly one
    let read = get_team(&app, &admin, &team).await;
    assert_eq!(read["member_count"], 1);
    assert_eq!(member_ids(&read), BTreeSet::from([members[1].id.clone()]));
}

#[tokio::test]
async fn team_names_with_control_characters_and_overlong_descriptions_are_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.team(&admin, "Clean").await;
    for body in [
        json!({ "name": "bell\u{7}name" }),
        json!({ "name": "new\nline" }),
        json!({ "name": "nul\u{0}" }),
        json!({ "name": "Fine", "description": "d".repeat(1001) }),
    ] {
        // WHEN a name holds control characters or the description is too long
        let create = app.post(TEAMS, Some(&admin.token), body.clone()).await;
        let update = app.put(&team_path(&id), Some(&admin.token), body.clone()).await;
        // THEN both creating and updating are 422
        assert_eq!(create.status.as_u16(), 422, "create {body}: {}", create.text);
        assert_eq!(update.status.as_u16(), 422, "update {body}: {}", update.text);
    }
    // AND a description of exactly 1000 characters is fine
    app.post(
        TEAMS,
        Some(&admin.token),
        json!({ "name": "Long story", "description": "d".repeat(1000) }),
    )
    .await
    .expect(201);
    assert_eq!(get_team(&app, &admin, &id).await["name"], "Clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_of_one_team_never_fail_with_5xx() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for round in 0..5 {
        // GIVEN a team with two members
        let members = users(&app, 2).await;
        let team = app.team(&admin, &format!("Gone {round}")).await;
        for m in &members {
            app.add_member(&admin, &team, m).await.expect(200);
        }
        // WHEN it is deleted three times at once
        let path = team_path(&team);
        let replies = join_all((0..3).map(|_| app.delete(&path, Some(&admin.token)))).await;
        // THEN each is a 204 or a 404, at least one a 204
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s == 204 || *s == 404),
            "round {round}: {statuses:?}"
        );
        assert!(statuses.contains(&204), "round {round}: {statuses:?}");
        // AND the team is gone, its members free and its name available
        app.get(&path, Some(&admin.token)).await.expect(404);
        for m in &members {
            assert!(get_user(&app, &admin, &m.id).await["team_id"].is_null());
        }
        app.team(&admin, &format!("gone {round}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_user_while_adding_them_leaves_no_ghost_member() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let second_admin = app.admin().await;
    for round in 0..8 {
        // GIVEN a team and a user
        let team = app.team(&admin, &format!("Ghosts {round}")).await;
        let user = app.user().await;
        // WHEN one admin deletes the user while another adds them to the team
        let path = format!("/api/v1/users/{}", user.id);
        let (deleted, added) = tokio::join!(
            app.delete(&path, Some(&admin.token)),
            app.add_member(&second_admin, &team, &user),
        );
        // THEN the user is deleted, and the add either came first or found no user
        deleted.expect(204);
        let added = added.status.as_u16();
        assert!(added == 200 || added == 404, "round {round}: add gave {added}");
        // AND the team holds no trace of them
        let read = get_team(&app, &admin, &team).await;
        assert_eq!(read["member_count"], 0, "round {round} (add gave {added}): {read}");
        assert_eq!(read["members"], json!([]), "round {round} (add gave {added})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_member_while_deleting_them_decrements_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let second_admin = app.admin().await;
    for round in 0..8 {
        // GIVEN a team with the user and a teammate
        let user = app.user().await;
        let mate = app.user().await;
        let team = app.team(&admin, &format!("Leaving {round}")).await;
        app.add_member(&admin, &team, &user).await.expect(200);
        app.add_member(&admin, &team, &mate).await.expect(200);
        // WHEN one admin removes the user from the team while another deletes the user
        let remove_path = member_path(&team, &user.id);
        let delete_path = format!("/api/v1/users/{}", user.id);
        let (removed, deleted) = tokio::join!(
            app.delete(&remove_path, Some(&admin.token)),
            app.delete(&delete_path, Some(&second_admin.token)),
        );
        // THEN the delete succeeds and the removal either came first or found no member
        deleted.expect(204);
        let removed = removed.status.as_u16();
        assert!(removed == 204 || removed == 404, "round {round}: remove gave {removed}");
        // AND the count dropped by exactly one
        let read = get_team(&app, &admin, &team).await;
        assert_eq!(read["member_count"], 1, "round {round} (remove gave {removed}): {read}");
        assert_eq!(member_ids(&read), BTreeSet::from([mate.id.clone()]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promoting_a_user_while_adding_them_keeps_the_member_role_right() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let second_admin = app.admin().await;
    for round in 0..8 {
        // GIVEN a team and a plain user
        let team = app.team(&admin, &format!("Roles {round}")).await;
        let user = app.user().await;
        // WHEN one admin promotes the user while another adds them to the team
        let path = format!("/api/v1/users/{}", user.id);
        let (promoted, added) = tokio::join!(
            app.patch(&path, Some(&admin.token), json!({ "is_admin": true })),
            app.add_member(&second_admin, &team, &user),
        );
        // THEN both succeed
        promoted.expect(200);
        added.expect(200);
        // AND the team's member list shows them as an admin
        let read = get_team(&app, &admin, &team).await;
        let members = read["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "round {round}");
        assert_eq!(members[0]["is_admin"], true, "round {round}: {read}");
        assert_eq!(get_user(&app, &admin, &user.id).await["is_admin"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_team_twice_while_its_name_is_retaken_never_fails_with_5xx() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let people = users(&app, 4).await;
    for round in 0..10 {
        // GIVEN a team with members (so a delete takes a while)
        let team = app.team(&admin, &format!("Retaken {round}")).await;
        for m in &people {
            app.add_member(&admin, &team, m).await.expect(200);
        }
        // WHEN it is deleted twice at once while another team grabs its name as soon
        // as it is free
        let path = team_path(&team);
        let name = format!("retaken {round}");
        let retake = async {
            for _ in 0..500 {
                let reply = app.post(TEAMS, Some(&admin.token), json!({ "name": name })).await;
                if reply.status.as_u16() != 409 {
                    return reply.status.as_u16();
                }
            }
            409
        };
        let (first, second, retaken) = tokio::join!(
            app.delete(&path, Some(&admin.token)),
            app.delete(&path, Some(&admin.token)),
            retake,
        );
        // THEN both deletes are 204 or 404, and the name was taken by the new team
        let statuses = [first.status.as_u16(), second.status.as_u16()];
        assert!(
            statuses.iter().all(|s| *s == 204 || *s == 404),
            "round {round}: deletes gave {statuses:?}"
        );
        assert_eq!(retaken, 201, "round {round}");
        // AND the old team is gone with its members released, the new one keeps the name
        app.get(&path, Some(&admin.token)).await.expect(404);
        for m in &people {
            assert!(get_user(&app, &admin, &m.id).await["team_id"].is_null());
        }
        app.post(TEAMS, Some(&admin.token), json!({ "name": name }))
            .await
            .expect(409);
    }
}

// ---------- input hardening ----------

#[tokio::test]
async fn team_names_are_nfc_normalised_before_comparison_and_storage() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let created = app
        .post(
            "/api/v1/teams",
            Some(&admin.token),
            json!({ "name": "Cafe\u{301} Ops" }),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(created["name"], "Caf\u{e9} Ops");
    app.post("/api/v1/teams", Some(&admin.token), json!({ "name": "CAF\u{c9} ops" }))
        .await
        .expect(409);
}

#[tokio::test]
async fn bidi_zero_width_and_control_characters_in_team_names_are_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for name in [
        "Plat\u{200b}form",
        "\u{202e}mroftalP",
        "ops\u{2066}x\u{2069}",
        "a\u{7}b",
        "\u{3164}",
    ] {
        let body = app
            .post("/api/v1/teams", Some(&admin.token), json!({ "name": name }))
            .await
            .expect(422)
            .json();
        assert_eq!(body["errors"][0]["field"], "name", "{name:?}: {body}");
    }
    let body = app
        .post(
            "/api/v1/teams",
            Some(&admin.token),
            json!({ "name": "Fine", "description": "tab\tand\nnewline are fine, NUL\u{0} is not" }),
        )
        .await
        .expect(422)
        .json();
    assert_eq!(body["errors"][0]["field"], "description");
}
