//! User management as the public API offers it, REST and gRPC alike: list
//! users, delete one, change a password. Each operation decides here who may
//! do it (admins; a user may also change their own password), so both
//! protocols only decode, call and encode. Does network I/O through the
//! auth service.

use vectron_auth::UserInfo;

use crate::access::{Access, Action, Caller};
use crate::error::{ApiError, Result};

/// Every user, by name (admins only).
pub async fn list(access: &Access, caller: &Caller) -> Result<Vec<UserInfo>> {
    caller.allow(Action::Admin)?;
    access
        .auth()?
        .list_users()
        .await
        .map_err(|e| ApiError::from_status(&e))
}

/// Deletes `username` (admins only); the tokens issued to it stop working at
/// once.
pub async fn delete(access: &Access, caller: &Caller, username: &str) -> Result<()> {
    caller.allow(Action::Admin)?;
    access
        .auth()?
        .delete_user(username)
        .await
        .map_err(|e| ApiError::from_status(&e))
}

/// Sets `username`'s password (admins, or the user themselves); the tokens
/// issued to it before stop working at once.
pub async fn change_password(
    access: &Access,
    caller: &Caller,
    username: &str,
    new_password: &str,
) -> Result<()> {
    if !is_self(caller, username) {
        caller.allow(Action::Admin)?;
    }
    access
        .auth()?
        .change_password(username, new_password)
        .await
        .map_err(|e| ApiError::from_status(&e))
}

/// Whether the caller is the user `username` signed in with a token.
fn is_self(caller: &Caller, username: &str) -> bool {
    caller
        .principal
        .as_ref()
        .and_then(|p| p.subject.strip_prefix("user:"))
        .is_some_and(|name| name == username)
}

#[cfg(test)]
mod tests {
    use vectron_auth::{Principal, Role};

    use super::*;

    fn caller(subject: &str, role: Role) -> Caller {
        Caller {
            principal: Some(Principal {
                subject: subject.to_owned(),
                role,
                collections: None,
            }),
        }
    }

    #[test]
    fn only_the_user_themselves_counts_as_self() {
        assert!(is_self(&caller("user:dana", Role::Read), "dana"));
        assert!(!is_self(&caller("user:dana", Role::Read), "dan"));
        assert!(!is_self(&caller("api-key:dana", Role::Read), "dana"));
        assert!(!is_self(&Caller { principal: None }, "dana"));
    }

    #[tokio::test]
    async fn a_reader_may_not_list_delete_or_change_another_users_password() {
        let reader = caller("user:dana", Role::Read);
        let access = Access::Open;
        for result in [
            list(&access, &reader).await.map(|_| ()),
            delete(&access, &reader, "erin").await,
            change_password(&access, &reader, "erin", "new-password-1").await,
        ] {
            let error = result.expect_err("refused");
            assert_eq!(error.kind, crate::error::ErrorKind::PermissionDenied);
        }
        // Their own password passes the check (and then meets auth, off
        // here).
        let error = change_password(&access, &reader, "dana", "new-password-1")
            .await
            .expect_err("auth is off");
        assert_eq!(error.kind, crate::error::ErrorKind::Conflict);
    }
}
