//! Users: my team and its members, and admin user management (list, filter, promote,
//! demote, delete) with the rule that at least one admin always remains.

mod common;

use common::{collect_pages, TestApp, TestUser, PASSWORD};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const USERS: &str = "/api/v1/users";
const MY_TEAM: &str = "/api/v1/users/me/team";
const MY_MEMBERS: &str = "/api/v1/users/me/team/members";

fn user_path(id: &str) -> String {
    format!("{USERS}/{id}")
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn key_set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn summary_keys() -> BTreeSet<String> {
    key_set(&["id", "email", "is_admin", "team_id", "created_at"])
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

fn id_set(items: &[Value]) -> BTreeSet<String> {
    ids(items).into_iter().collect()
}

fn ids_of(users: &[&TestUser]) -> BTreeSet<String> {
    users.iter().map(|u| u.id.clone()).collect()
}

/// A cursor with one character in the middle changed.
fn tamper(cursor: &str) -> String {
    let mut chars: Vec<char> = cursor.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Signs in `n` plain users at once.
async fn users(app: &TestApp, n: usize) -> Vec<TestUser> {
    join_all((0..n).map(|_| app.user())).await
}

/// The user as an admin sees it now.
async fn get_user(app: &TestApp, admin: &TestUser, id: &str) -> Value {
    app.get(&user_path(id), Some(&admin.token)).await.expect(200).json()
}

async fn get_team(app: &TestApp, admin: &TestUser, id: &str) -> Value {
    app.get(&format!("/api/v1/teams/{id}"), Some(&admin.token))
        .await
        .expect(200)
        .json()
}

/// A team with `members` in it.
async fn team_with(app: &TestApp, admin: &TestUser, name: &str, members: &[&TestUser]) -> String {
    let team = app.team(admin, name).await;
    for m in members {
        app.add_member(admin, &team, m).await.expect(200);
    }
    team
}

/// Every user, through every page, as `admin` sees them.
async fn all_users(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    collect_pages(app, USERS, &admin.token, 100).await.0
}

/// The ids of every admin, read from the stored user items.
async fn admin_ids(app: &TestApp, candidates: &[&TestUser]) -> BTreeSet<String> {
    let mut admins = BTreeSet::new();
    for u in candidates {
        let item = app.raw_user(&u.id).await.expect("user item");
        if item.get("is_admin").and_then(|v| v.as_bool().ok()).copied() == Some(true) {
            admins.insert(u.id.clone());
        }
    }
    admins
}

fn set_admin(flag: bool) -> Value {
    json!({ "is_admin": flag })
}

// ---------------------------------------------------------------------------------
// My team
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn my_team_is_the_team_i_belong_to() {
    // GIVEN a user in a team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let mate = app.user().await;
    app.team(&admin, "Elsewhere").await;
    let team = team_with(&app, &admin, "Home", &[&user, &mate]).await;
    // WHEN they ask for their team
    let body = app.get(MY_TEAM, Some(&user.token)).await.expect(200).json();
    // THEN they get it
    assert_eq!(body["id"], team.as_str());
    assert_eq!(body["name"], "Home");
    assert_eq!(body["member_count"], 2);
    assert_eq!(body["created_by"], admin.id.as_str());
}

#[tokio::test]
async fn my_team_is_404_without_a_team() {
    // GIVEN a user who never joined a team, and one who left
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let never = app.user().await;
    let left = app.user().await;
    let team = team_with(&app, &admin, "Left behind", &[&left]).await;
    app.delete(&format!("/api/v1/teams/{team}/members/{}", left.id), Some(&admin.token))
        .await
        .expect(204);
    // WHEN they ask for their team or its members THEN 404
    for user in [&never, &left, &admin] {
        app.get(MY_TEAM, Some(&user.token)).await.expect(404);
        app.get(MY_MEMBERS, Some(&user.token)).await.expect(404);
    }
}

#[tokio::test]
async fn my_team_routes_need_a_valid_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    team_with(&app, &admin, "Private", &[&user]).await;
    let altered = format!("{}x", user.token);
    for path in [MY_TEAM, MY_MEMBERS] {
        for token in [None, Some("garbage"), Some(altered.as_str())] {
            // WHEN called without a valid token THEN 401
            let reply = app.get(path, token).await;
            assert_eq!(reply.status.as_u16(), 401, "{path} with {token:?}: {}", reply.text);
            assert!(reply
                .header("www-authenticate")
                .unwrap_or_default()
                .starts_with("Bearer"));
        }
    }
}

#[tokio::test]
async fn my_team_members_lists_my_team_and_nobody_else() {
    // GIVEN a team of three (one an admin) and another team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let second_admin = app.admin().await;
    let people = users(&app, 4).await;
    let team = team_with(&app, &admin, "Mine", &[&people[0], &people[1], &second_admin]).await;
    team_with(&app, &admin, "Theirs", &[&people[2]]).await;
    // WHEN a member lists their team's members
    let body = app.get(MY_MEMBERS, Some(&people[0].token)).await.expect(200).json();
    // THEN it is {items, next_cursor} with exactly the three members
    assert_eq!(keys_of(&body), key_set(&["items", "next_cursor"]));
    assert!(body["next_cursor"].is_null());
    let items = body["items"].as_array().unwrap();
    assert_eq!(id_set(items), ids_of(&[&people[0], &people[1], &second_admin]));
    for item in items {
        assert_eq!(keys_of(item), summary_keys());
        assert_eq!(item["team_id"], team.as_str());
        assert_eq!(item["is_admin"], item["id"] == second_admin.id.as_str());
        let email = if item["id"] == people[0].id.as_str() {
            &people[0].email
        } else if item["id"] == people[1].id.as_str() {
            &people[1].email
        } else {
            &second_admin.email
        };
        assert_eq!(item["email"], email.as_str());
    }
}

#[tokio::test]
async fn my_team_members_page_through_every_member_exactly_once() {
    // GIVEN a team of seven
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let people = users(&app, 7).await;
    let refs: Vec<&TestUser> = people.iter().collect();
    team_with(&app, &admin, "Seven", &refs).await;
    // WHEN a member pages through it three at a time
    let (items, pages) = collect_pages(&app, MY_MEMBERS, &people[3].token, 3).await;
    // THEN three pages hold every member once
    assert_eq!(pages, 3);
    let listed = ids(&items);
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert_eq!(id_set(&items), ids_of(&refs));
    // AND the order is stable
    let (again, _) = collect_pages(&app, MY_MEMBERS, &people[0].token, 3).await;
    assert_eq!(ids(&again), listed);
}

#[tokio::test]
async fn my_team_members_limit_must_be_1_to_100() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    team_with(&app, &admin, "Limits", &[&user]).await;
    for limit in ["0", "101", "abc", "-3", ""] {
        let reply = app.get(&format!("{MY_MEMBERS}?limit={limit}"), Some(&user.token)).await;
        assert_eq!(reply.status.as_u16(), 400, "limit={limit}: {}", reply.text);
    }
    app.get(&format!("{MY_MEMBERS}?limit=100"), Some(&user.token))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_members_cursor_only_works_for_its_own_team() {
    // GIVEN two teams of two, and a members cursor of team A
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let people = users(&app, 4).await;
    team_with(&app, &admin, "A", &[&people[0], &people[1]]).await;
    team_with(&app, &admin, "B", &[&people[2], &people[3]]).await;
    app.team(&admin, "C").await;
    let page = app
        .get(&format!("{MY_MEMBERS}?limit=1"), Some(&people[0].token))
        .await
        .expect(200)
        .json();
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();
    // (it works for team A)
    app.get(&format!("{MY_MEMBERS}?limit=1&cursor={cursor}"), Some(&people[1].token))
        .await
        .expect(200);
    // WHEN a member of team B uses it THEN 400
    app.get(&format!("{MY_MEMBERS}?limit=1&cursor={cursor}"), Some(&people[2].token))
        .await
        .expect(400);
    // WHEN it is tampered with THEN 400
    app.get(
        &format!("{MY_MEMBERS}?limit=1&cursor={}", tamper(&cursor)),
        Some(&people[0].token),
    )
    .await
    .expect(400);
    // WHEN a cursor of the teams list is used THEN 400
    let teams_cursor = app
        .get("/api/v1/teams?limit=1", Some(&admin.token))
        .await
        .expect(200)
        .json()["next_cursor"]
        .as_str()
        .expect("teams cursor")
        .to_string();
    app.get(
        &format!("{MY_MEMBERS}?limit=1&cursor={teams_cursor}"),
        Some(&people[0].token),
    )
    .await
    .expect(400);
    // WHEN a garbage cursor is used THEN 400
    app.get(&format!("{MY_MEMBERS}?cursor=garbage"), Some(&people[0].token))
        .await
        .expect(400);
}

// ---------------------------------------------------------------------------------
// Admin: list, filter, read
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn listing_users_pages_through_every_user_exactly_once() {
    // GIVEN an admin and six users
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let people = users(&app, 6).await;
    let mut everyone: Vec<&TestUser> = people.iter().collect();
    everyone.push(&admin);
    // WHEN the admin pages through users three at a time
    let (items, pages) = collect_pages(&app, USERS, &admin.token, 3).await;
    // THEN three pages hold every user once, as summaries
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 7);
    assert_eq!(id_set(&items), ids_of(&everyone));
    for item in &items {
        assert_eq!(keys_of(item), summary_keys());
        assert_eq!(item["is_admin"], item["id"] == admin.id.as_str());
    }
    // AND the order is stable and matches one big page
    let (again, _) = collect_pages(&app, USERS, &admin.token, 3).await;
    assert_eq!(ids(&again), ids(&items));
    let one_page = app.get(USERS, Some(&admin.token)).await.expect(200).json();
    assert!(one_page["next_cursor"].is_null());
    assert_eq!(ids(one_page["items"].as_array().unwrap()), ids(&items));
}

#[tokio::test]
async fn user_list_limit_and_cursor_are_checked() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    users(&app, 2).await;
    app.team(&admin, "T1").await;
    app.team(&admin, "T2").await;
    // WHEN the limit is out of range or not a number THEN 400
    for limit in ["0", "101", "abc", "-1", "2.0", ""] {
        let reply = app.get(&format!("{USERS}?limit={limit}"), Some(&admin.token)).await;
        assert_eq!(reply.status.as_u16(), 400, "limit={limit}: {}", reply.text);
    }
    let cursor = app
        .get(&format!("{USERS}?limit=1"), Some(&admin.token))
        .await
        .expect(200)
        .json()["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let teams_cursor = app
        .get("/api/v1/teams?limit=1", Some(&admin.token))
        .await
        .expect(200)
        .json()["next_cursor"]
        .as_str()
        .expect("teams cursor")
        .to_string();
    // (the real cursor works)
    app.get(&format!("{USERS}?limit=1&cursor={cursor}"), Some(&admin.token))
        .await
        .expect(200);
    // WHEN the cursor is tampered, foreign or garbage THEN 400
    for bad in [tamper(&cursor), teams_cursor, "garbage".to_string(), "A".repeat(3000)] {
        let reply = app
            .get(&format!("{USERS}?limit=1&cursor={bad}"), Some(&admin.token))
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{bad}: {}", reply.text);
    }
}

#[tokio::test]
async fn filtering_users_by_team_returns_only_its_members() {
    // GIVEN team A with three members, team B with one, and a teamless user
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let people = users(&app, 5).await;
    let a = team_with(&app, &admin, "A", &[&people[0], &people[1], &people[2]]).await;
    let b = team_with(&app, &admin, "B", &[&people[3]]).await;
    // WHEN the admin lists users of team A, one per page
    let (items, pages) = collect_pages(&app, &format!("{USERS}?team_id={a}"), &admin.token, 1).await;
    // THEN exactly A's members come back, each once
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 3);
    assert_eq!(id_set(&items), ids_of(&[&people[0], &people[1], &people[2]]));
    for item in &items {
        assert_eq!(keys_of(item), summary_keys());
        assert_eq!(item["team_id"], a.as_str());
    }
    // AND team B gives B's member only
    let only_b = app
        .get(&format!("{USERS}?team_id={b}"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(id_set(only_b["items"].as_array().unwrap()), ids_of(&[&people[3]]));
    // AND an unknown team gives an empty page
    let none = app
        .get(&format!("{USERS}?team_id={}", uuid::Uuid::new_v4()), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(none, json!({ "items": [], "next_cursor": null }));
}

#[tokio::test]
async fn filtering_users_by_a_malformed_team_id_is_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for team_id in ["not-a-uuid", "123", "", "%27%20OR%201%3D1"] {
        let reply = app.get(&format!("{USERS}?team_id={team_id}"), Some(&admin.token)).await;
        assert_eq!(reply.status.as_u16(), 400, "team_id={team_id}: {}", reply.text);
    }
}

#[tokio::test]
async fn filtering_users_by_email_is_case_insensitive() {
    // GIVEN a few users, one with a plus in their address
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let people = users(&app, 3).await;
    let plus_email = format!("first+tag-{}@Example.com", &uuid::Uuid::new_v4().to_string()[..8]);
    let plus_id = app.register(&plus_email, PASSWORD).await.expect(201).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // WHEN the admin looks a user up by email in another case
    let body = app
        .get(
            &format!("{USERS}?email={}", people[1].email.to_uppercase()),
            Some(&admin.token),
        )
        .await
        .expect(200)
        .json();
    // THEN exactly that user comes back
    let items = body["items"].as_array().unwrap();
    assert_eq!(ids(items), vec![people[1].id.clone()]);
    assert_eq!(keys_of(&items[0]), summary_keys());
    assert_eq!(items[0]["email"], people[1].email.as_str());
    assert!(body["next_cursor"].is_null());
    // AND an encoded address with a plus works too
    let encoded = plus_email.to_lowercase().replace('+', "%2B").replace('@', "%40");
    let body = app
        .get(&format!("{USERS}?email={encoded}"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(ids(body["items"].as_array().unwrap()), vec![plus_id]);
    // AND an unknown email gives an empty page
    let none = app
        .get(&format!("{USERS}?email=nobody@example.com"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(none, json!({ "items": [], "next_cursor": null }));
}

#[tokio::test]
async fn reading_a_user_shows_their_public_view() {
    // GIVEN a user in a team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let team = team_with(&app, &admin, "Seen", &[&user]).await;
    // WHEN an admin reads them
    let body = get_user(&app, &admin, &user.id).await;
    // THEN the public view comes back
    assert_eq!(
        keys_of(&body),
        key_set(&["id", "email", "is_admin", "team_id", "created_at", "updated_at"])
    );
    assert_eq!(body["id"], user.id.as_str());
    assert_eq!(body["email"], user.email.as_str());
    assert_eq!(body["is_admin"], false);
    assert_eq!(body["team_id"], team.as_str());
}

#[tokio::test]
async fn unknown_or_malformed_user_ids_are_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "42"] {
        let path = user_path(id);
        app.get(&path, Some(&admin.token)).await.expect(404);
        app.patch(&path, Some(&admin.token), set_admin(true)).await.expect(404);
        app.patch(&path, Some(&admin.token), set_admin(false)).await.expect(404);
        app.delete(&path, Some(&admin.token)).await.expect(404);
    }
}

#[tokio::test]
async fn every_admin_user_route_is_401_anonymous_and_403_for_non_admins() {
    // GIVEN a plain user in a team, and another user
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let other = app.user().await;
    let team = team_with(&app, &admin, "Members", &[&user]).await;
    let routes = |target: &str| {
        vec![
            (Method::GET, USERS.to_string(), None),
            (Method::GET, format!("{USERS}?team_id={team}"), None),
            (Method::GET, format!("{USERS}?email={}", admin.email), None),
            (Method::GET, user_path(target), None),
            (Method::PATCH, user_path(target), Some(set_admin(true))),
            (Method::PATCH, user_path(target), Some(set_admin(false))),
            (Method::DELETE, user_path(target), None),
        ]
    };
    for target in [&user.id, &other.id, &admin.id] {
        for (method, path, body) in routes(target) {
            // WHEN a plain user calls it (even about themselves) THEN 403
            let reply = app.send(method.clone(), &path, Some(&user.token), body.clone()).await;
            assert_eq!(reply.status.as_u16(), 403, "{method} {path}: {}", reply.text);
            // WHEN nobody signed in calls it THEN 401
            let reply = app.send(method.clone(), &path, None, body).await;
            assert_eq!(reply.status.as_u16(), 401, "{method} {path}: {}", reply.text);
        }
    }
    // AND nothing changed: nobody was promoted, demoted or deleted
    assert_eq!(admin_ids(&app, &[&admin, &user, &other]).await, ids_of(&[&admin]));
    assert_eq!(get_user(&app, &admin, &user.id).await["team_id"], team.as_str());
    app.get("/api/v1/auth/me", Some(&other.token)).await.expect(200);
}

// ---------------------------------------------------------------------------------
// Admin: promote and demote
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_promoted_users_existing_token_is_admin_at_once() {
    // GIVEN a plain user, who cannot list teams
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    app.get("/api/v1/teams", Some(&user.token)).await.expect(403);
    // WHEN an admin promotes them
    let body = app
        .patch(&user_path(&user.id), Some(&admin.token), set_admin(true))
        .await
        .expect(200)
        .json();
    // THEN the answer shows it
    assert_eq!(body["is_admin"], true);
    assert_eq!(body["id"], user.id.as_str());
    // AND their existing token works on admin routes
    app.get("/api/v1/teams", Some(&user.token)).await.expect(200);
    app.get(USERS, Some(&user.token)).await.expect(200);
    assert_eq!(get_user(&app, &admin, &user.id).await["is_admin"], true);
}

#[tokio::test]
async fn a_demoted_admins_existing_token_is_refused_at_once() {
    // GIVEN two admins
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    app.get("/api/v1/teams", Some(&second.token)).await.expect(200);
    // WHEN one demotes the other
    let body = app
        .patch(&user_path(&second.id), Some(&first.token), set_admin(false))
        .await
        .expect(200)
        .json();
    assert_eq!(body["is_admin"], false);
    // THEN the demoted admin's existing token gets 403 on admin routes at once
    app.get("/api/v1/teams", Some(&second.token)).await.expect(403);
    app.get(USERS, Some(&second.token)).await.expect(403);
    app.patch(&user_path(&first.id), Some(&second.token), set_admin(false))
        .await
        .expect(403);
    // AND it still works as a plain user's token
    app.get("/api/v1/auth/me", Some(&second.token)).await.expect(200);
    // AND the other admin is untouched
    app.get("/api/v1/teams", Some(&first.token)).await.expect(200);
}

#[tokio::test]
async fn patch_bodies_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    for body in [
        json!({ "is_admin": true, "email": "new@example.com" }),
        json!({ "team_id": uuid::Uuid::new_v4() }),
        json!({ "password": "x" }),
        json!({ "is_admin": "yes" }),
        json!({ "is_admin": 1 }),
        json!(true),
        json!("is_admin"),
    ] {
        // WHEN the body is invalid THEN 422
        let reply = app.patch(&user_path(&user.id), Some(&admin.token), body.clone()).await;
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text);
    }
    // AND the user is unchanged
    let read = get_user(&app, &admin, &user.id).await;
    assert_eq!(read["is_admin"], false);
    assert_eq!(read["email"], user.email.as_str());
    assert!(read["team_id"].is_null());
    // AND an empty patch changes nothing
    let same = app
        .patch(&user_path(&user.id), Some(&admin.token), json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(same["is_admin"], false);
}

#[tokio::test]
async fn a_patch_type_error_names_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let reply = app
        .patch(&user_path(&user.id), Some(&admin.token), json!({ "is_admin": "yes" }))
        .await
        .expect(422);
    assert_eq!(reply.json()["errors"][0]["field"], "is_admin");
}

#[tokio::test]
async fn a_json_array_is_not_a_patch_object() {
    // GIVEN a plain user
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    // WHEN the PATCH body is the array `[true]` instead of an object
    let reply = app.patch(&user_path(&user.id), Some(&admin.token), json!([true])).await;
    // THEN 422, and nobody is promoted
    assert_eq!(reply.status.as_u16(), 422, "{}", reply.text);
    assert_eq!(get_user(&app, &admin, &user.id).await["is_admin"], false);
}

#[tokio::test]
async fn the_last_admin_cannot_demote_themselves() {
    // GIVEN a single admin (and a plain user)
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    // WHEN they demote themselves
    let reply = app
        .patch(&user_path(&admin.id), Some(&admin.token), set_admin(false))
        .await
        .expect(409);
    assert_eq!(reply.json()["status"], 409);
    // THEN they are still an admin
    app.get("/api/v1/teams", Some(&admin.token)).await.expect(200);
    assert_eq!(get_user(&app, &admin, &admin.id).await["is_admin"], true);
    // AND "demoting" an already plain user is harmless
    app.patch(&user_path(&user.id), Some(&admin.token), set_admin(false))
        .await
        .expect(200);
    app.get("/api/v1/teams", Some(&admin.token)).await.expect(200);
}

#[tokio::test]
async fn with_two_admins_one_can_demote_the_other_but_not_then_themselves() {
    // GIVEN two admins
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    // WHEN the first demotes the second THEN it works
    app.patch(&user_path(&second.id), Some(&first.token), set_admin(false))
        .await
        .expect(200);
    // AND the first is now the last admin and cannot demote themselves
    app.patch(&user_path(&first.id), Some(&first.token), set_admin(false))
        .await
        .expect(409);
    // WHEN the second is promoted again THEN the second may demote the first
    app.patch(&user_path(&second.id), Some(&first.token), set_admin(true))
        .await
        .expect(200);
    app.patch(&user_path(&first.id), Some(&second.token), set_admin(false))
        .await
        .expect(200);
    // AND then the second is the last one
    app.patch(&user_path(&second.id), Some(&second.token), set_admin(false))
        .await
        .expect(409);
    assert_eq!(admin_ids(&app, &[&first, &second]).await, ids_of(&[&second]));
}

#[tokio::test]
async fn promoting_twice_does_not_let_the_last_admin_be_demoted() {
    // GIVEN an admin who promotes a user twice, then demotes them once
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    for _ in 0..2 {
        app.patch(&user_path(&user.id), Some(&admin.token), set_admin(true))
            .await
            .expect(200);
    }
    app.patch(&user_path(&user.id), Some(&admin.token), set_admin(false))
        .await
        .expect(200);
    // WHEN the admin, now the only one again, demotes themselves THEN 409
    app.patch(&user_path(&admin.id), Some(&admin.token), set_admin(false))
        .await
        .expect(409);
    app.get("/api/v1/teams", Some(&admin.token)).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_an_admin() {
    for round in 0..6 {
        // GIVEN exactly two admins
        let app = TestApp::spawn().await;
        let first = app.admin().await;
        let second = app.admin().await;
        // WHEN each demotes the other at the same moment
        let first_path = user_path(&first.id);
        let second_path = user_path(&second.id);
        let (a, b) = tokio::join!(
            app.patch(&second_path, Some(&first.token), set_admin(false)),
            app.patch(&first_path, Some(&second.token), set_admin(false)),
        );
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        // THEN at most one succeeds; the loser gets a conflict, or a 403 when it was
        // already demoted by the time its request was authorized
        assert!(
            statuses.iter().all(|s| [200, 403, 409].contains(s)),
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().filter(|s| **s == 200).count() <= 1,
            "round {round}: {statuses:?}"
        );
        // AND at least one admin remains
        let admins = admin_ids(&app, &[&first, &second]).await;
        assert!(!admins.is_empty(), "round {round}: no admin left");
        assert_eq!(admins.len(), 2 - statuses.iter().filter(|s| **s == 200).count());
        // AND the rule still holds afterwards: the last admin cannot step down
        if admins.len() == 1 {
            let last = if admins.contains(&first.id) { &first } else { &second };
            app.patch(&user_path(&last.id), Some(&last.token), set_admin(false))
                .await
                .expect(409);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_deleting_each_other_at_once_leave_an_admin() {
    for round in 0..6 {
        // GIVEN exactly two admins
        let app = TestApp::spawn().await;
        let first = app.admin().await;
        let second = app.admin().await;
        // WHEN each deletes the other at the same moment
        let first_path = user_path(&first.id);
        let second_path = user_path(&second.id);
        let (a, b) = tokio::join!(
            app.delete(&second_path, Some(&first.token)),
            app.delete(&first_path, Some(&second.token)),
        );
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        // THEN at most one succeeds (the loser is refused: 409, or 401 when already gone)
        assert!(
            statuses.iter().filter(|s| **s == 204).count() <= 1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| [204, 401, 409].contains(s)),
            "round {round}: {statuses:?}"
        );
        // AND an admin remains who can still work
        let mut remaining = 0;
        for u in [&first, &second] {
            if app.raw_user(&u.id).await.is_some() {
                remaining += 1;
                app.get("/api/v1/teams", Some(&u.token)).await.expect(200);
            }
        }
        assert!(remaining >= 1, "round {round}: nobody left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demoting_one_admin_while_the_other_deletes_themselves_leaves_an_admin() {
    for round in 0..6 {
        // GIVEN exactly two admins
        let app = TestApp::spawn().await;
        let first = app.admin().await;
        let second = app.admin().await;
        // WHEN the first demotes the second while the second deletes the first
        let first_path = user_path(&first.id);
        let second_path = user_path(&second.id);
        let (a, b) = tokio::join!(
            app.patch(&second_path, Some(&first.token), set_admin(false)),
            app.delete(&first_path, Some(&second.token)),
        );
        // THEN not both succeed
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        assert!(
            !(statuses[0] == 200 && statuses[1] == 204),
            "round {round}: {statuses:?}"
        );
        // AND somebody is still an admin
        let mut admins = 0;
        for u in [&first, &second] {
            if let Some(item) = app.raw_user(&u.id).await {
                if item.get("is_admin").and_then(|v| v.as_bool().ok()).copied() == Some(true) {
                    admins += 1;
                }
            }
        }
        assert!(admins >= 1, "round {round}: {statuses:?} left no admin");
    }
}

#[tokio::test]
async fn team_membership_shows_promotions_and_demotions() {
    // GIVEN a plain user in a team
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let mate = app.user().await;
    let team = team_with(&app, &admin, "Visible", &[&user, &mate]).await;
    let flag_in = |members: &Value| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == user.id.as_str())
            .map(|m| m["is_admin"].clone())
            .expect("listed")
    };
    for promote in [true, false, true] {
        // WHEN they are promoted or demoted
        app.patch(&user_path(&user.id), Some(&admin.token), set_admin(promote))
            .await
            .expect(200);
        // THEN every view of the team's members shows it
        let team_view = get_team(&app, &admin, &team).await;
        assert_eq!(flag_in(&team_view["members"]), promote);
        assert_eq!(team_view["member_count"], 2);
        let mine = app.get(MY_MEMBERS, Some(&mate.token)).await.expect(200).json();
        assert_eq!(flag_in(&mine["items"]), promote);
        let filtered = app
            .get(&format!("{USERS}?team_id={team}"), Some(&admin.token))
            .await
            .expect(200)
            .json();
        assert_eq!(flag_in(&filtered["items"]), promote);
        assert_eq!(flag_in(&json!(all_users(&app, &admin).await)), promote);
    }
}

// ---------------------------------------------------------------------------------
// Admin: delete
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_user_removes_them_everywhere() {
    // GIVEN a user in a team with a teammate
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let mate = app.user().await;
    let team = team_with(&app, &admin, "Shrinks", &[&user, &mate]).await;
    // WHEN an admin deletes the user
    let reply = app.delete(&user_path(&user.id), Some(&admin.token)).await.expect(204);
    assert!(reply.text.is_empty());
    // THEN the user is gone
    app.get(&user_path(&user.id), Some(&admin.token)).await.expect(404);
    assert!(!id_set(&all_users(&app, &admin).await).contains(&user.id));
    let by_email = app
        .get(&format!("{USERS}?email={}", user.email), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(by_email["items"], json!([]));
    // AND their membership is gone, with the count
    let team_view = get_team(&app, &admin, &team).await;
    assert_eq!(team_view["member_count"], 1);
    assert_eq!(id_set(team_view["members"].as_array().unwrap()), ids_of(&[&mate]));
    let mine = app.get(MY_MEMBERS, Some(&mate.token)).await.expect(200).json();
    assert_eq!(id_set(mine["items"].as_array().unwrap()), ids_of(&[&mate]));
    // AND their token no longer works, nor does their password
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
    app.get(MY_TEAM, Some(&user.token)).await.expect(401);
    app.login(&user.email, PASSWORD).await.expect(401);
    // AND deleting them again is 404
    app.delete(&user_path(&user.id), Some(&admin.token)).await.expect(404);
    // AND the same email can register again, as a new user with no team
    let again = app.register(&user.email, PASSWORD).await.expect(201).json();
    assert_ne!(again["id"], user.id.as_str());
    assert!(again["team_id"].is_null());
    let token = app.token(&user.email, PASSWORD).await;
    app.get(MY_TEAM, Some(&token)).await.expect(404);
    // AND the old token stays dead
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
}

#[tokio::test]
async fn deleting_an_admin_member_keeps_team_and_admin_count_right() {
    // GIVEN two admins, one of them in a team
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    let team = team_with(&app, &first, "Admins", &[&second]).await;
    // WHEN the first deletes the second
    app.delete(&user_path(&second.id), Some(&first.token)).await.expect(204);
    // THEN the team is empty and the deleted admin's token is dead
    let view = get_team(&app, &first, &team).await;
    assert_eq!(view["member_count"], 0);
    assert_eq!(view["members"], json!([]));
    app.get("/api/v1/teams", Some(&second.token)).await.expect(401);
    // AND the first is now the last admin
    app.patch(&user_path(&first.id), Some(&first.token), set_admin(false))
        .await
        .expect(409);
    app.delete(&user_path(&first.id), Some(&first.token)).await.expect(409);
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted() {
    // GIVEN a single admin
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // WHEN they delete themselves THEN 409
    let reply = app.delete(&user_path(&admin.id), Some(&admin.token)).await.expect(409);
    assert_eq!(reply.json()["status"], 409);
    // AND they are still there and still an admin
    app.get("/api/v1/teams", Some(&admin.token)).await.expect(200);
    app.login(&admin.email, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn an_admin_can_delete_themselves_when_another_admin_remains() {
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    // WHEN an admin deletes themselves while another remains THEN 204
    app.delete(&user_path(&first.id), Some(&first.token)).await.expect(204);
    app.get("/api/v1/auth/me", Some(&first.token)).await.expect(401);
    // AND the remaining one is the last
    app.delete(&user_path(&second.id), Some(&second.token))
        .await
        .expect(409);
}
