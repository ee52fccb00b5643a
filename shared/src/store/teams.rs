//! Teams, their name markers and memberships.

use super::{
    bool_value, from_item, keys, n, s, Expr, Item, KeyCondition, QueryPage, RequestList, Store, StoreError, Stored, Tx,
};
use crate::domain::audit::{Action, Origin, Target};
use crate::{
    domain::budget::TeamBudget,
    model::{Team, User, UserSummary},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Reserves a team name (lower-cased) for one team.
#[derive(Serialize, Deserialize)]
struct TeamNameMarker {
    team_id: Uuid,
}

const RACE_ATTEMPTS: usize = 4;

fn team_item(team: &Team) -> Result<Item, StoreError> {
    Stored::new(keys::TEAM, keys::team(team.id), team)
        .indexed(keys::teams_index(&team.created_at, team.id))
        .to_item()
}

fn name_marker(normalised: &str, team_id: Uuid) -> Result<Item, StoreError> {
    Stored::new(keys::TEAM_NAME, keys::team_name(normalised), TeamNameMarker { team_id }).to_item()
}

/// The form team names are compared in: trimmed, NFC, lower-case.
pub fn normalise_team_name(name: &str) -> String {
    crate::text::fold(name)
}

/// What to change on a team; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TeamChanges {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// The requests that still hold their name (nothing when the index was not read).
fn holding_names(requests: Option<Vec<crate::model::ResourceRequest>>) -> Vec<crate::model::ResourceRequest> {
    requests
        .unwrap_or_default()
        .into_iter()
        .filter(|r| crate::domain::lifecycle::holds_name(r.status))
        .collect()
}

/// The 409 of a team deletion: what the team still has, at most 20 listed.
impl Store {
    /// Creates a team and reserves its name in one transaction.
    pub async fn create_team(&self, team: &Team, origin: &Origin) -> Result<(), StoreError> {
        let tx = Tx::new(self)
            .put_new(team_item(team)?)?
            .put_new(name_marker(&normalise_team_name(&team.name), team.id)?)?
            .audit(
                origin
                    .event(Action::TeamCreated, Target::team(team.id))
                    .team(Some(team.id))
                    .fact("name", &team.name),
            );
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1) => Err(StoreError::TeamNameTaken),
            Err(e) => Err(e),
        }
    }

    /// A live team (one being deleted counts as gone).
    pub async fn get_team(&self, id: Uuid) -> Result<Option<Team>, StoreError> {
        let team: Option<Team> = self.get(&keys::team(id)).await?.map(from_item).transpose()?;
        Ok(team.filter(|t| !t.deleting))
    }

    /// A team and all its members: one query over the team's partition.
    pub async fn get_team_with_members(&self, id: Uuid) -> Result<Option<(Team, Vec<UserSummary>)>, StoreError> {
        let (team, members) = self.team_partition(id).await?;
        Ok(team.filter(|t| !t.deleting).map(|t| (t, members)))
    }

    /// All teams, oldest first.
    pub async fn list_teams(&self, limit: usize, start: Option<Item>) -> Result<(Vec<Team>, Option<Item>), StoreError> {
        let QueryPage { items, next } = self
            .query_page(
                KeyCondition {
                    index: Some(keys::Index::Gsi1),
                    pk: keys::TEAMS_INDEX_PK.into(),
                    sk_prefix: None,
                    ..Default::default()
                },
                limit,
                start,
            )
            .await?;
        let teams: Vec<Team> = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((teams.into_iter().filter(|t| !t.deleting).collect(), next))
    }

    /// A page of a team's members, in user-id order.
    pub async fn list_members(
        &self,
        team_id: Uuid,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<UserSummary>, Option<Item>), StoreError> {
        let QueryPage { items, next } = self
            .query_page(
                KeyCondition {
                    index: None,
                    pk: keys::team_pk(team_id),
                    sk_prefix: Some(keys::MEMBER_PREFIX),
                    ..Default::default()
                },
                limit,
                start,
            )
            .await?;
        let members = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((members, next))
    }

    /// Sets (`Some`) or removes (`None`) a team's budget; `None` when the team does
    /// not exist or is being deleted. No version check: nothing else writes `budget`,
    /// and a rename does not touch it.
    pub async fn set_team_budget(
        &self,
        id: Uuid,
        budget: Option<&TeamBudget>,
        now: &str,
        origin: &Origin,
    ) -> Result<Option<Team>, StoreError> {
        let expr = Expr::new().value(":now", s(now));
        let (update, expr, event) = match budget {
            Some(b) => (
                "SET budget = :budget, updated_at = :now",
                expr.value(":budget", serde_dynamo::to_attribute_value(b)?),
                origin
                    .event(Action::BudgetSet, Target::team(id))
                    .fact("monthly_limit", b.monthly_limit),
            ),
            None => (
                "SET updated_at = :now REMOVE budget",
                expr,
                origin.event(Action::BudgetRemoved, Target::team(id)),
            ),
        };
        let tx = Tx::new(self)
            .update(
                &keys::team(id),
                update,
                Some("attribute_exists(PK) AND attribute_not_exists(deleting)"),
                expr,
            )?
            .audit(event.team(Some(id)));
        match self.commit(tx).await {
            Ok(()) => self.get_team(id).await,
            Err(e) if e.failed_at(0) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Updates a team. Each attempt writes on the version it read, so concurrent
    /// updates apply one after the other and none is lost; a rename moves the name
    /// marker in the same transaction.
    pub async fn update_team(
        &self,
        id: Uuid,
        changes: &TeamChanges,
        now: &str,
        origin: &Origin,
    ) -> Result<Team, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let mut team = self.get_team(id).await?.ok_or(StoreError::NotFound("team"))?;
            let mut event = origin.event(Action::TeamUpdated, Target::team(id)).team(Some(id));
            if changes.name.as_ref().is_some_and(|n| *n != team.name) {
                event = event.changed("name", &team.name, &changes.name);
            }
            if changes.description.as_ref().is_some_and(|d| *d != team.description) {
                event = event.changed("description", &team.description, &changes.description);
            }
            let old_name = normalise_team_name(&team.name);
            if let Some(name) = &changes.name {
                team.name = name.clone();
            }
            if let Some(description) = &changes.description {
                team.description = description.clone();
            }
            let new_name = normalise_team_name(&team.name);
            let seen_version = team.version;
            team.version += 1;
            team.updated_at = now.to_string();
            let mut tx = Tx::new(self).update(
                &keys::team(id),
                "SET #name = :name, description = :description, updated_at = :now, version = :next",
                Some("version = :seen AND attribute_not_exists(deleting)"),
                Expr::new()
                    .name("#name", "name")
                    .value(":name", s(&team.name))
                    .value(":description", s(&team.description))
                    .value(":now", s(now))
                    .value(":next", n(team.version))
                    .value(":seen", n(seen_version)),
            )?;
            if new_name != old_name {
                tx = tx
                    .delete(
                        &keys::team_name(&old_name),
                        Some("team_id = :id"),
                        Expr::new().value(":id", s(id.to_string())),
                    )?
                    .put_new(name_marker(&new_name, id)?)?;
            }
            match self.commit(tx.audit(event)).await {
                Ok(()) => return Ok(team),
                Err(e) if new_name != old_name && e.failed_at(2) => return Err(StoreError::TeamNameTaken),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::TeamBusy)
    }

    /// Deletes a team. First marks it as deleting (no one can join or ask for a
    /// resource from then on); then, if it still has requests that hold their name
    /// (resources not deleted, requests not decided), unmarks it and answers 409 with
    /// them; else releases every member, then removes the team and its name. Each step
    /// can be repeated, so a call that fails halfway is completed by the next one.
    pub async fn delete_team(&self, id: Uuid, origin: &Origin) -> Result<(), StoreError> {
        // Checked first too, so that a team with work under way is never marked (a
        // runner does not start a job for a team being deleted).
        let live = holding_names(self.requests_once_indexed(RequestList::Team(id), 0).await?);
        if !live.is_empty() {
            return Err(StoreError::TeamOwnsRequests(live));
        }
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::team(id))))
            .update_expression("SET deleting = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", bool_value(true))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(super::classify);
        let team: Team = match marked {
            Ok(out) => from_item(out.attributes.unwrap_or_default())?,
            Err(e) if e.is_condition_failed() => return Err(StoreError::NotFound("team")),
            Err(e) => return Err(e),
        };
        // Checked after the mark: no request can be made for the team from then on,
        // and the mark's answer says how many were ever made. The index is eventually
        // consistent: it is read until it holds them all.
        let indexed = self
            .requests_once_indexed(RequestList::Team(id), team.requests_created)
            .await?;
        let lagging = indexed.is_none();
        let live = holding_names(indexed);
        if lagging || !live.is_empty() {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(super::key_item(&keys::team(id))))
                .update_expression("REMOVE deleting")
                .condition_expression("attribute_exists(PK)")
                .send()
                .await
                .map_err(super::classify)?;
            if lagging {
                return Err(StoreError::IndexBehind("team"));
            }
            return Err(StoreError::TeamOwnsRequests(live));
        }
        let (_, members) = self.team_partition(id).await?;
        for member in members {
            self.release_member(id, member.id, origin).await?;
        }
        let event = || {
            origin
                .event(Action::TeamDeleted, Target::team(id))
                .team(Some(id))
                .fact("name", &team.name)
        };
        // Conditional on the item, so that of two racing deletions one records it.
        let tx = Tx::new(self)
            .delete(&keys::team(id), Some("attribute_exists(PK)"), Expr::new())?
            .delete(
                &keys::team_name(&normalise_team_name(&team.name)),
                Some("attribute_not_exists(PK) OR team_id = :id"),
                Expr::new().value(":id", s(id.to_string())),
            )?
            .audit(event());
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(0) => Ok(()),
            // A concurrent delete of this team released the name and another team has
            // taken it since: only this team's own item may be left to remove.
            Err(e) if e.failed_at(1) => {
                let alone = Tx::new(self)
                    .delete(&keys::team(id), Some("attribute_exists(PK)"), Expr::new())?
                    .audit(event());
                match self.commit(alone).await {
                    Err(e) if e.is_condition_failed() => Ok(()),
                    other => Ok(other?),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The team item (even while deleting) and its members.
    async fn team_partition(&self, id: Uuid) -> Result<(Option<Team>, Vec<UserSummary>), StoreError> {
        let mut team = None;
        let mut members = Vec::new();
        for item in self.query_all(keys::team_pk(id)).await? {
            match item.get(keys::SK) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if sk.starts_with(keys::MEMBER_PREFIX) => {
                    members.push(from_item::<UserSummary>(item)?)
                }
                _ => team = Some(from_item::<Team>(item)?),
            }
        }
        Ok((team, members))
    }

    /// Takes a user out of a team being deleted: clears their `team_id` (if it still
    /// points here) and removes the membership.
    async fn release_member(&self, team_id: Uuid, user_id: Uuid, origin: &Origin) -> Result<(), StoreError> {
        let with_user = Tx::new(self)
            .update(
                &keys::user(user_id),
                "REMOVE team_id",
                Some("team_id = :team"),
                Expr::new().value(":team", s(team_id.to_string())),
            )?
            .delete(&keys::membership(team_id, user_id), None, Expr::new())?
            .audit(
                origin
                    .event(Action::MemberRemoved, Target::user(user_id))
                    .team(Some(team_id))
                    .changed("team_id", team_id, None::<Uuid>)
                    .fact("reason", "team deleted"),
            );
        match self.commit(with_user).await {
            Ok(()) => Ok(()),
            // The user was deleted or already released: the membership alone is left.
            Err(e) if e.failed_at(0) => {
                let alone = Tx::new(self).delete(&keys::membership(team_id, user_id), None, Expr::new())?;
                self.transact(alone.items).await
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a user to a team. Repeating it for the same team is harmless; a user in
    /// another team is a 409; when two admins add one user to two teams at once, the
    /// condition on the user item lets exactly one win.
    pub async fn add_member(
        &self,
        team_id: Uuid,
        user_id: Uuid,
        now: &str,
        origin: &Origin,
    ) -> Result<User, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let (team, user) = tokio::try_join!(self.get_team(team_id), self.get_user(user_id))?;
            if team.is_none() {
                return Err(StoreError::NotFound("team"));
            }
            let mut user = user.ok_or(StoreError::NotFound("user"))?;
            match user.team_id {
                Some(current) if current == team_id => return Ok(user),
                Some(_) => return Err(StoreError::InAnotherTeam),
                None => {}
            }
            user.team_id = Some(team_id);
            user.updated_at = now.to_string();
            let member = Stored::new(
                keys::MEMBER,
                keys::membership(team_id, user_id),
                UserSummary::from(&user),
            )
            .to_item()?;
            let tx = Tx::new(self)
                .update(
                    &keys::user(user_id),
                    "SET team_id = :team, updated_at = :now",
                    Some("attribute_exists(PK) AND attribute_not_exists(team_id) AND is_admin = :adm"),
                    Expr::new()
                        .value(":team", s(team_id.to_string()))
                        .value(":now", s(now))
                        .value(":adm", bool_value(user.is_admin)),
                )?
                .put(member, Some("attribute_not_exists(PK)"), Expr::new())?
                .update(
                    &keys::team(team_id),
                    "ADD member_count :one",
                    Some("attribute_exists(PK) AND attribute_not_exists(deleting)"),
                    Expr::new().value(":one", n(1)),
                )?
                .audit(
                    origin
                        .event(Action::MemberAdded, Target::user(user_id))
                        .team(Some(team_id))
                        .changed("team_id", None::<Uuid>, team_id),
                );
            match self.commit(tx).await {
                Ok(()) => return Ok(user),
                Err(e) if e.failed_at(2) => return Err(StoreError::NotFound("team")),
                // The user changed (joined somewhere, was promoted): look again.
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::UserBusy)
    }

    /// Removes a member from a team; 404 when the user is not a member of it.
    pub async fn remove_member(
        &self,
        team_id: Uuid,
        user_id: Uuid,
        now: &str,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        // No read first: the condition on the user item says whether they are a member.
        let tx = Tx::new(self)
            .update(
                &keys::user(user_id),
                "REMOVE team_id SET updated_at = :now",
                Some("team_id = :team"),
                Expr::new().value(":team", s(team_id.to_string())).value(":now", s(now)),
            )?
            .delete(
                &keys::membership(team_id, user_id),
                Some("attribute_exists(PK)"),
                Expr::new(),
            )?
            .update(
                &keys::team(team_id),
                "ADD member_count :minus",
                Some("attribute_exists(PK)"),
                Expr::new().value(":minus", n(-1)),
            )?
            .audit(
                origin
                    .event(Action::MemberRemoved, Target::user(user_id))
                    .team(Some(team_id))
                    .changed("team_id", team_id, None::<Uuid>),
            );
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_condition_failed() => Err(StoreError::NotFound("member")),
            Err(e) => Err(e),
        }
    }
}
