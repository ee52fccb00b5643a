//! Users, their email markers and the admin counter.

use super::{from_item, keys, n, s, Expr, Item, QueryPage, Store, StoreError, Stored, Tx};
use crate::{
    domain::{
        audit::{Action, Origin, Target},
        Actor, LifecycleError, PlannedTransition,
    },
    model::{RequestStatus, ResourceRequest, User},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Reserves an email (lower-cased) for one user.
#[derive(Serialize, Deserialize)]
pub(super) struct EmailMarker {
    pub user_id: Uuid,
}

/// How many times a read-then-conditional-write is redone after losing a race.
const RACE_ATTEMPTS: usize = 3;

/// The most pending requests a user deletion cancels in its transaction (two writes
/// and an audit event each, with the deletion's own writes, its event and the audit
/// head within DynamoDB's 100 per transaction).
pub const MAX_CANCELLATIONS: usize = 30;

fn user_item(user: &User) -> Result<Item, StoreError> {
    Stored::new(keys::USER, keys::user(user.id), user)
        .indexed(keys::users_index(&user.created_at, user.id))
        .to_item()
}

/// The condition that the user item still has the team it was read with.
fn team_condition(user: &User, expr: Expr) -> (String, Expr) {
    match user.team_id {
        Some(team) => (
            "team_id = :seen_team".into(),
            expr.value(":seen_team", s(team.to_string())),
        ),
        None => ("attribute_not_exists(team_id)".into(), expr),
    }
}

impl Store {
    /// Creates a user and reserves its email in one transaction: when many
    /// registrations of one email race, exactly one wins and the others get a 409.
    pub async fn create_user(&self, user: &User, normalised_email: &str, origin: &Origin) -> Result<(), StoreError> {
        self.create_user_releasing(user, normalised_email, None, origin).await
    }

    /// [`Store::create_user`] for `POST /auth/register`: the same transaction gives back
    /// the registration reservation (`REGISTER#window#source`), so that only a
    /// registration that hits a taken email (the transaction fails) stays counted.
    pub async fn register_user(
        &self,
        user: &User,
        normalised_email: &str,
        source: &str,
        window: crate::throttle::Window,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        let release = Some(keys::registrations(window.index, source));
        // The new account acts for itself.
        let origin = origin.as_actor(Actor::User(user.id));
        self.create_user_releasing(user, normalised_email, release, &origin)
            .await
    }

    async fn create_user_releasing(
        &self,
        user: &User,
        normalised_email: &str,
        release: Option<keys::Key>,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        let action = if release.is_some() {
            Action::UserRegistered
        } else {
            Action::UserCreated
        };
        let marker = Stored::new(
            keys::EMAIL,
            keys::email(normalised_email),
            EmailMarker { user_id: user.id },
        )
        .to_item()?;
        let event = origin
            .event(action, Target::user(user.id))
            .fact("email", &user.email)
            .fact("is_admin", user.is_admin);
        let mut tx = Tx::new(self).put_new(user_item(user)?)?.put_new(marker)?.audit(event);
        if user.is_admin {
            tx = tx.update(
                &keys::admin_counter(),
                "ADD admin_count :one SET entity_type = :et",
                None,
                Expr::new().value(":one", n(1)).value(":et", s(keys::META)),
            )?;
        }
        if let Some(counter) = release {
            // No condition: a counter that expired in between only comes back at -1.
            tx = tx.update(
                &counter,
                "ADD conflicts :minus",
                None,
                Expr::new().value(":minus", n(-1)),
            )?;
        }
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1) => Err(StoreError::EmailTaken),
            Err(e) => Err(e),
        }
    }

    pub async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.get(&keys::user(id)).await?.map(from_item).transpose()
    }

    /// Looks a user up by normalised email: the marker, then the user.
    pub async fn find_user_by_email(&self, normalised_email: &str) -> Result<Option<User>, StoreError> {
        let Some(marker) = self.get(&keys::email(normalised_email)).await? else {
            return Ok(None);
        };
        let marker: EmailMarker = from_item(marker)?;
        self.get_user(marker.user_id).await
    }

    /// Revokes every token issued so far (logout).
    pub async fn bump_token_version(&self, id: Uuid, origin: &Origin) -> Result<(), StoreError> {
        let tx = Tx::new(self)
            .update(
                &keys::user(id),
                "ADD token_version :one",
                Some("attribute_exists(PK)"),
                Expr::new().value(":one", n(1)),
            )?
            .audit(origin.event(Action::LoggedOut, Target::user(id)));
        self.commit(tx).await.map_err(|e| match e {
            e if e.is_condition_failed() => StoreError::TokenUserGone,
            e => e,
        })
    }

    /// Sets (or with `None` removes) the calling user's age recipient.
    /// [`StoreError::TokenUserGone`] when the user was deleted meanwhile.
    pub async fn set_age_recipient(
        &self,
        id: Uuid,
        recipient: Option<&str>,
        now: &str,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        let expr = Expr::new().value(":now", s(now));
        let (update, expr, event) = match recipient {
            Some(r) => (
                "SET age_recipient = :r, updated_at = :now",
                expr.value(":r", s(r)),
                origin
                    .event(Action::PublicKeySet, Target::user(id))
                    .fact("age_recipient", r),
            ),
            None => (
                "SET updated_at = :now REMOVE age_recipient",
                expr,
                origin.event(Action::PublicKeyRemoved, Target::user(id)),
            ),
        };
        let tx = Tx::new(self)
            .update(&keys::user(id), update, Some("attribute_exists(PK)"), expr)?
            .audit(event);
        self.commit(tx).await.map_err(|e| match e {
            e if e.is_condition_failed() => StoreError::TokenUserGone,
            e => e,
        })
    }

    /// Replaces the password hash and revokes older tokens, provided no token was
    /// revoked since `user` was read.
    pub async fn change_password(
        &self,
        user: &User,
        new_hash: &str,
        now: &str,
        origin: &Origin,
    ) -> Result<(), StoreError> {
        let tx = Tx::new(self)
            .update(
                &keys::user(user.id),
                "SET password_hash = :hash, updated_at = :now ADD token_version :one",
                Some("token_version = :seen"),
                Expr::new()
                    .value(":hash", s(new_hash))
                    .value(":now", s(now))
                    .value(":one", n(1))
                    .value(":seen", n(user.token_version)),
            )?
            // The fact of the change only: never the hash.
            .audit(
                origin
                    .event(Action::PasswordChanged, Target::user(user.id))
                    .team(user.team_id),
            );
        // Notifications: a security notice to the user (docs/notifications.md).
        let tx = super::outbox::append_notice(tx, &crate::notify::password_changed(user.id, now))?;
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(0) => Err(StoreError::TokenRevoked),
            Err(e) => Err(e),
        }
    }

    /// Promotes or demotes a user. The admin counter moves in the same transaction and
    /// refuses to drop below one, so the last admin cannot be demoted.
    pub async fn set_admin(&self, id: Uuid, make_admin: bool, now: &str, origin: &Origin) -> Result<User, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let mut user = self.get_user(id).await?.ok_or(StoreError::NotFound("user"))?;
            if user.is_admin == make_admin {
                return Ok(user);
            }
            let (team_cond, expr) = team_condition(
                &user,
                Expr::new()
                    .value(":to", crate::store::bool_value(make_admin))
                    .value(":from", crate::store::bool_value(user.is_admin))
                    .value(":now", s(now)),
            );
            let mut tx = Tx::new(self).update(
                &keys::user(id),
                "SET is_admin = :to, updated_at = :now",
                Some(&format!("is_admin = :from AND {team_cond}")),
                expr,
            )?;
            if let Some(team) = user.team_id {
                tx = tx.update(
                    &keys::membership(team, id),
                    "SET is_admin = :to",
                    Some("attribute_exists(PK)"),
                    Expr::new().value(":to", crate::store::bool_value(make_admin)),
                )?;
            }
            tx = admin_counter_op(tx, make_admin)?;
            let counter_index = tx.items.len() - 1;
            let tx = tx.audit(
                origin
                    .event(Action::RoleChanged, Target::user(id))
                    .team(user.team_id)
                    .changed("is_admin", user.is_admin, make_admin),
            );
            match self.commit(tx).await {
                Ok(()) => {
                    user.is_admin = make_admin;
                    user.updated_at = now.to_string();
                    return Ok(user);
                }
                Err(e) if e.failed_at(counter_index) => return Err(StoreError::LastAdmin { deleting: false }),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::UserChanged { deleting: false })
    }

    /// Deletes a user with their email marker and membership, and in the same
    /// transaction the cancellation of each of their pending requests, as `cancel`
    /// plans it; returns how many were cancelled. Their tokens die with the item
    /// (authentication reads the current user). The user's request index is read
    /// until it holds every request the user made (the count on the user item), and
    /// the deletion is conditional on that count, so no pending request is missed.
    pub async fn delete_user(
        &self,
        id: Uuid,
        cancel: impl Fn(&ResourceRequest) -> Result<PlannedTransition, LifecycleError>,
        origin: &Origin,
    ) -> Result<usize, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let user = self.get_user(id).await?.ok_or(StoreError::NotFound("user"))?;
            let Some(requests) = self
                .requests_once_indexed(super::RequestList::Requester(id), user.requests_created)
                .await?
            else {
                return Err(StoreError::IndexBehind("user"));
            };
            let cancellations = requests
                .into_iter()
                .filter(|r| r.status == RequestStatus::Pending)
                .map(|r| cancel(&r).map(|p| (r, p)))
                .collect::<Result<Vec<_>, _>>()?;
            if cancellations.len() > MAX_CANCELLATIONS {
                return Err(StoreError::TooManyPending {
                    count: cancellations.len(),
                    max: MAX_CANCELLATIONS,
                });
            }
            let (team_cond, expr) = team_condition(
                &user,
                Expr::new()
                    .value(":adm", crate::store::bool_value(user.is_admin))
                    .value(":made", n(user.requests_created)),
            );
            // No request made since the index was read.
            let made = if user.requests_created == 0 {
                "(attribute_not_exists(requests_created) OR requests_created = :made)"
            } else {
                "requests_created = :made"
            };
            let mut tx = Tx::new(self)
                .delete(
                    &keys::user(id),
                    Some(&format!("is_admin = :adm AND {team_cond} AND {made}")),
                    expr,
                )?
                .delete(
                    &keys::email(&crate::auth::email::normalise(&user.email)),
                    None,
                    Expr::new(),
                )?;
            if let Some(team) = user.team_id {
                tx = tx.delete(&keys::membership(team, id), None, Expr::new())?.update(
                    &keys::team(team),
                    "ADD member_count :minus",
                    Some("attribute_exists(PK)"),
                    Expr::new().value(":minus", n(-1)),
                )?;
            }
            let counter_index = if user.is_admin {
                tx = admin_counter_op(tx, false)?;
                Some(tx.items.len() - 1)
            } else {
                None
            };
            for (request, planned) in &cancellations {
                tx = super::requests::transition_items(tx, request, planned)?.audit(origin.transition(
                    request,
                    planned.to,
                    planned.step.comment.as_deref(),
                ));
            }
            // The deletion's own event also names what it cancelled.
            let cancelled: Vec<Uuid> = cancellations.iter().map(|(r, _)| r.id).collect();
            let tx = tx.audit(
                origin
                    .event(Action::UserDeleted, Target::user(id))
                    .team(user.team_id)
                    .fact("email", &user.email)
                    .fact("cancelled_requests", cancelled),
            );
            match self.commit(tx).await {
                Ok(()) => return Ok(cancellations.len()),
                Err(e) if counter_index.is_some_and(|i| e.failed_at(i)) => {
                    return Err(StoreError::LastAdmin { deleting: true })
                }
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::UserChanged { deleting: true })
    }

    /// All users, oldest first.
    pub async fn list_users(&self, limit: usize, start: Option<Item>) -> Result<(Vec<User>, Option<Item>), StoreError> {
        let QueryPage { items, next } = self
            .query_page(
                super::KeyCondition {
                    index: Some(keys::Index::Gsi1),
                    pk: keys::USERS_INDEX_PK.into(),
                    sk_prefix: None,
                    ..Default::default()
                },
                limit,
                start,
            )
            .await?;
        let users = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((users, next))
    }
}

/// Moves the admin counter: up on promotion; down on demotion or deletion, only while
/// at least one other admin remains.
fn admin_counter_op(tx: Tx<'_>, promote: bool) -> Result<Tx<'_>, StoreError> {
    if promote {
        tx.update(
            &keys::admin_counter(),
            "ADD admin_count :one SET entity_type = :et",
            None,
            Expr::new().value(":one", n(1)).value(":et", s(keys::META)),
        )
    } else {
        tx.update(
            &keys::admin_counter(),
            "ADD admin_count :minus",
            Some("admin_count > :one"),
            Expr::new().value(":minus", n(-1)).value(":one", n(1)),
        )
    }
}
