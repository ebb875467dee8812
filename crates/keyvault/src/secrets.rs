//! Secrets beside keys (DESIGN.md R17): versions with attributes, soft
//! delete, recover and purge, under the same access policies, the same
//! audit log and the same transactions as keys. A secret's value is sealed
//! by the backend ([`KeyCrypto::seal_secret`](crate::state::KeyCrypto)):
//! under the root key in software, as a private data object in a PKCS#11
//! token.

use zeroize::Zeroizing;

use crate::limits::{
    MAX_CONTENT_TYPE_CHARS, MAX_SECRET_VALUE_BYTES, MAX_VERSIONS_PER_SECRET, check, check_state,
    check_tags_of,
};
use crate::state::{DeletedSecretRecord, Material, SecretRecord, SecretVersionRecord, State};
use crate::vault::{DAY, Doomed, SYSTEM, Vault, audit, check_window, invalid, new_version};
use crate::{
    AuditOutcome, DeletedSecretInfo, Permission, Principal, Secret, SecretAttributes,
    SecretOptions, SecretUpdate, SecretValue, SecretVersionInfo, UnixTime, VaultError,
};

/// The spelling under which the state holds secret `name` (active,
/// soft-deleted or purged), compared case-insensitively as key names are;
/// `name` itself when the state has no such secret.
pub(crate) fn stored_secret_name(state: &State, name: &str) -> String {
    if state.secrets.contains_key(name)
        || state.deleted_secrets.contains_key(name)
        || state.purged_secrets.contains_key(name)
    {
        return name.to_owned();
    }
    state
        .secrets
        .find_ignore_case(name)
        .or_else(|| state.deleted_secrets.find_ignore_case(name))
        .or_else(|| state.purged_secrets.find_ignore_case(name))
        .map_or_else(|| name.to_owned(), Clone::clone)
}

/// Why there is no active secret `name`: deleted, purged, or never there.
pub(crate) fn missing_secret(state: &State, name: &str) -> VaultError {
    if let Some(deleted) = state.deleted_secrets.get(name) {
        VaultError::SecretDeleted {
            name: name.to_owned(),
            scheduled_purge: deleted.scheduled_purge,
        }
    } else if let Some(purged) = state.purged_secrets.get(name) {
        VaultError::SecretPurged {
            name: name.to_owned(),
            purged: *purged,
        }
    } else {
        VaultError::SecretNotFound {
            name: name.to_owned(),
            version: None,
        }
    }
}

/// The active secret `name`, or the error that says where it went.
fn active_secret<'s>(state: &'s State, name: &str) -> Result<&'s SecretRecord, VaultError> {
    state
        .secrets
        .get(name)
        .ok_or_else(|| missing_secret(state, name))
}

/// Refuses a name that an active or soft-deleted secret holds.
pub(crate) fn ensure_secret_name_free(state: &State, name: &str) -> Result<(), VaultError> {
    if state.secrets.contains_key(name) || state.deleted_secrets.contains_key(name) {
        return Err(VaultError::SecretExists {
            name: name.to_owned(),
            deleted: state.deleted_secrets.contains_key(name),
        });
    }
    Ok(())
}

/// The position of `version` in `record`, checking its form first.
fn find_secret_version(record: &SecretRecord, version: &str) -> Result<usize, VaultError> {
    if !crate::vault::valid_version(version) {
        return Err(invalid(
            "a secret version is 32 lowercase hex digits, as the vault hands them out",
        ));
    }
    record
        .versions
        .iter()
        .position(|v| v.version == version)
        .ok_or_else(|| VaultError::SecretNotFound {
            name: record.name.clone(),
            version: Some(version.to_owned()),
        })
}

/// What listing shows of a version: never its value.
pub(crate) fn secret_info(
    vault: &str,
    record: &SecretRecord,
    version: &SecretVersionRecord,
) -> SecretVersionInfo {
    SecretVersionInfo {
        vault: vault.to_owned(),
        name: record.name.clone(),
        version: version.version.clone(),
        attributes: version.attributes.clone(),
    }
}

pub(crate) fn latest_secret_info(
    vault: &str,
    record: &SecretRecord,
) -> Result<SecretVersionInfo, VaultError> {
    record
        .versions
        .last()
        .map(|v| secret_info(vault, record, v))
        .ok_or_else(|| VaultError::SecretNotFound {
            name: record.name.clone(),
            version: None,
        })
}

fn deleted_secret_info(
    vault: &str,
    record: &DeletedSecretRecord,
) -> Result<DeletedSecretInfo, VaultError> {
    Ok(DeletedSecretInfo {
        name: record.secret.name.clone(),
        deleted: record.deleted,
        scheduled_purge: record.scheduled_purge,
        latest: latest_secret_info(vault, &record.secret)?,
    })
}

/// Checks a content type's length.
fn check_content_type(content_type: Option<&str>) -> Result<(), VaultError> {
    check(
        "characters in a secret content type",
        content_type.map_or(0, |c| c.chars().count()),
        MAX_CONTENT_TYPE_CHARS,
    )
}

/// Checks attributes, from a caller or from a backup being restored.
pub(crate) fn check_secret_attributes(attributes: &SecretAttributes) -> Result<(), VaultError> {
    check_window(attributes.not_before, attributes.expires)?;
    check_tags_of("tags on a secret version", &attributes.tags)?;
    check_content_type(attributes.content_type.as_deref())
}

/// Checks a secret value's length.
pub(crate) fn check_secret_value(value: &[u8]) -> Result<(), VaultError> {
    check("bytes of secret value", value.len(), MAX_SECRET_VALUE_BYTES)
}

/// Checks the number of versions a secret would have.
pub(crate) fn check_secret_versions(count: usize) -> Result<(), VaultError> {
    check("versions of a secret", count, MAX_VERSIONS_PER_SECRET)
}

/// Purges every deleted secret whose retention ended by `now`, auditing
/// each as done by the vault itself.
pub(crate) fn purge_due_secrets(state: &mut State, now: UnixTime) -> Vec<Doomed> {
    if state
        .secret_purge_memo
        .earliest(&state.deleted_secrets)
        .is_none_or(|earliest| earliest > now)
    {
        return Vec::new();
    }
    let due: Vec<String> = state
        .deleted_secrets
        .iter()
        .filter(|(_, record)| record.scheduled_purge <= now)
        .map(|(name, _)| name.clone())
        .collect();
    let mut doomed = Vec::new();
    for name in due {
        if let Some(record) = state.deleted_secrets.remove(&name) {
            doomed.extend(
                record
                    .secret
                    .versions
                    .into_iter()
                    .map(|v| Doomed::Secret(v.material)),
            );
            state.purged_secrets.insert(name.clone(), now);
            audit(
                state,
                now,
                SYSTEM,
                "purgeSecret (retention ended)",
                Some(&name),
                None,
                AuditOutcome::Allowed,
            );
        }
    }
    doomed
}

impl Vault {
    /// Seals `value` for a version the running transaction is about to
    /// record, remembering the material in `made` so that it is destroyed
    /// if the call does not commit it.
    pub(crate) fn seal_for(
        &self,
        value: &[u8],
        made: &mut Vec<Material>,
    ) -> Result<Material, VaultError> {
        let material = self.crypto.seal_secret(value)?;
        made.push(material.clone());
        Ok(material)
    }

    /// The end of a call that sealed values: on success those the state
    /// holds stay and the rest (a transaction run again) are destroyed;
    /// refused before committing, all are destroyed; failed while
    /// committing (the store's own error), they are left, since the commit
    /// may have happened (a PKCS#11 vault kept in a directory sweeps what
    /// its state does not name when it opens).
    pub(crate) fn settle_secrets<R>(
        &self,
        result: Result<R, VaultError>,
        committed: &[Vec<u8>],
        made: Vec<Material>,
    ) -> Result<R, VaultError> {
        let doomed: Vec<Material> = match (&result, committed.is_empty()) {
            (Ok(_), _) => made
                .into_iter()
                .filter(|m| !committed.contains(&m.id))
                .collect(),
            (Err(_), true) => made,
            (Err(_), false) => Vec::new(),
        };
        for material in &doomed {
            let _ = self.crypto.destroy_secret(material);
        }
        result
    }

    pub(crate) fn set_secret(
        &self,
        caller: &Principal,
        name: &str,
        value: &[u8],
        options: SecretOptions,
    ) -> Result<SecretVersionInfo, VaultError> {
        let mut made = Vec::new();
        let mut committed = Vec::new();
        let result = self.execute(
            caller.id(),
            "setSecret",
            Some(Permission::SetSecret),
            Some(name),
            |tx| {
                committed.clear();
                let given = name;
                let stored = stored_secret_name(tx.state, name);
                let name = stored.as_str();
                if tx.state.deleted_secrets.contains_key(name) {
                    return Err(VaultError::SecretExists {
                        name: name.to_owned(),
                        deleted: true,
                    });
                }
                check_secret_value(value)?;
                let count = tx.state.secrets.get(name).map_or(0, |r| r.versions.len());
                check_secret_versions(count + 1)?;
                let attributes = SecretAttributes {
                    enabled: options.enabled,
                    not_before: options.not_before,
                    expires: options.expires,
                    content_type: options.content_type.clone(),
                    tags: options.tags.clone(),
                    created: tx.now,
                    updated: tx.now,
                };
                check_secret_attributes(&attributes)?;
                let version = new_version()?;
                let material = self.seal_for(value, &mut made)?;
                let material_id = material.id.clone();
                tx.version = Some(version.clone());
                let vault_name = tx.state.properties.name.clone();
                tx.state.purged_secrets.remove(name);
                // A new secret keeps the caller's spelling.
                let name = if tx.state.secrets.contains_key(name) {
                    name
                } else {
                    tx.state.secrets.insert(
                        given.to_owned(),
                        SecretRecord {
                            name: given.to_owned(),
                            versions: Vec::new(),
                        },
                    );
                    given
                };
                let record = tx
                    .state
                    .secrets
                    .get_mut(name)
                    .ok_or_else(|| invalid("the secret was just inserted"))?;
                record.versions.push(SecretVersionRecord {
                    version,
                    attributes,
                    material,
                });
                let shown = latest_secret_info(&vault_name, record)?;
                check_state(tx.state)?;
                committed.push(material_id);
                Ok(shown)
            },
        );
        self.settle_secrets(result, &committed, made)
    }

    pub(crate) fn get_secret(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret, VaultError> {
        self.execute(
            caller.id(),
            "getSecret",
            Some(Permission::GetSecret),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let name = stored.as_str();
                let record = active_secret(tx.state, name)?;
                let index = match version {
                    Some(v) => find_secret_version(record, v)?,
                    None => record.versions.len().saturating_sub(1),
                };
                let v = record
                    .versions
                    .get(index)
                    .ok_or_else(|| missing_secret(tx.state, name))?;
                tx.version = Some(v.version.clone());
                if !v.attributes.enabled {
                    return Err(VaultError::SecretDisabled {
                        name: record.name.clone(),
                        version: v.version.clone(),
                    });
                }
                let value: Zeroizing<Vec<u8>> = self
                    .crypto
                    .open_secret(&v.material)
                    .map_err(|e| e.for_secret_version(&record.name, &v.version))?;
                Ok(Secret {
                    info: secret_info(&tx.state.properties.name, record, v),
                    value: SecretValue::new(value),
                })
            },
        )
    }

    pub(crate) fn list_secrets(
        &self,
        caller: &Principal,
    ) -> Result<Vec<SecretVersionInfo>, VaultError> {
        self.execute(
            caller.id(),
            "listSecrets",
            Some(Permission::ListSecrets),
            None,
            |tx| {
                tx.state
                    .secrets
                    .values()
                    .map(|record| latest_secret_info(&tx.state.properties.name, record))
                    .collect()
            },
        )
    }

    pub(crate) fn list_secret_versions(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<SecretVersionInfo>, VaultError> {
        self.execute(
            caller.id(),
            "listSecretVersions",
            Some(Permission::ListSecrets),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let record = active_secret(tx.state, &stored)?;
                Ok(record
                    .versions
                    .iter()
                    .map(|v| secret_info(&tx.state.properties.name, record, v))
                    .collect())
            },
        )
    }

    pub(crate) fn update_secret(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        update: SecretUpdate,
    ) -> Result<SecretVersionInfo, VaultError> {
        self.execute(
            caller.id(),
            "updateSecret",
            Some(Permission::SetSecret),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let name = stored.as_str();
                let now = tx.now;
                let vault_name = tx.state.properties.name.clone();
                let index = find_secret_version(active_secret(tx.state, name)?, version)?;
                tx.version = Some(version.to_owned());
                let record = tx
                    .state
                    .secrets
                    .get_mut(name)
                    .ok_or_else(|| invalid("the secret was just found"))?;
                let mut attributes = record.versions[index].attributes.clone();
                if let Some(enabled) = update.enabled {
                    attributes.enabled = enabled;
                }
                if let Some(not_before) = update.not_before {
                    attributes.not_before = not_before;
                }
                if let Some(expires) = update.expires {
                    attributes.expires = expires;
                }
                if let Some(content_type) = &update.content_type {
                    attributes.content_type.clone_from(content_type);
                }
                if let Some(tags) = &update.tags {
                    attributes.tags.clone_from(tags);
                }
                check_secret_attributes(&attributes)?;
                attributes.updated = now;
                record.versions[index].attributes = attributes;
                let shown = secret_info(&vault_name, record, &record.versions[index]);
                check_state(tx.state)?;
                Ok(shown)
            },
        )
    }

    pub(crate) fn delete_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<DeletedSecretInfo, VaultError> {
        self.execute(
            caller.id(),
            "deleteSecret",
            Some(Permission::DeleteSecret),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let name = stored.as_str();
                active_secret(tx.state, name)?;
                let secret = tx
                    .state
                    .secrets
                    .remove(name)
                    .ok_or_else(|| missing_secret(tx.state, name))?;
                let days = u64::from(tx.state.properties.soft_delete_retention_days);
                let record = DeletedSecretRecord {
                    secret,
                    deleted: tx.now,
                    scheduled_purge: tx.now.saturating_add(days * DAY),
                };
                let shown = deleted_secret_info(&tx.state.properties.name, &record)?;
                tx.state.deleted_secrets.insert(name.to_owned(), record);
                Ok(shown)
            },
        )
    }

    pub(crate) fn list_deleted_secrets(
        &self,
        caller: &Principal,
    ) -> Result<Vec<DeletedSecretInfo>, VaultError> {
        self.execute(
            caller.id(),
            "listDeletedSecrets",
            Some(Permission::ListSecrets),
            None,
            |tx| {
                tx.state
                    .deleted_secrets
                    .values()
                    .map(|record| deleted_secret_info(&tx.state.properties.name, record))
                    .collect()
            },
        )
    }

    pub(crate) fn recover_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<SecretVersionInfo, VaultError> {
        self.execute(
            caller.id(),
            "recoverSecret",
            Some(Permission::RecoverSecret),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let name = stored.as_str();
                if tx.state.secrets.contains_key(name) {
                    return Err(invalid(format!(
                        "secret {name} is not deleted; there is nothing to recover"
                    )));
                }
                let record = tx
                    .state
                    .deleted_secrets
                    .remove(name)
                    .ok_or_else(|| missing_secret(tx.state, name))?;
                let shown = latest_secret_info(&tx.state.properties.name, &record.secret)?;
                tx.state.secrets.insert(name.to_owned(), record.secret);
                Ok(shown)
            },
        )
    }

    pub(crate) fn purge_secret(&self, caller: &Principal, name: &str) -> Result<(), VaultError> {
        let materials = self.execute(
            caller.id(),
            "purgeSecret",
            Some(Permission::PurgeSecret),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let name = stored.as_str();
                if tx.state.secrets.contains_key(name) {
                    return Err(invalid(format!(
                        "secret {name} is not deleted; delete it before purging it"
                    )));
                }
                let record = tx
                    .state
                    .deleted_secrets
                    .get(name)
                    .ok_or_else(|| missing_secret(tx.state, name))?;
                if tx.state.properties.purge_protection && tx.now < record.scheduled_purge {
                    return Err(VaultError::SecretPurgeProtected {
                        name: name.to_owned(),
                        until: record.scheduled_purge,
                    });
                }
                let record = tx
                    .state
                    .deleted_secrets
                    .remove(name)
                    .ok_or_else(|| missing_secret(tx.state, name))?;
                tx.state.purged_secrets.insert(name.to_owned(), tx.now);
                Ok(record
                    .secret
                    .versions
                    .into_iter()
                    .map(|v| v.material)
                    .collect::<Vec<_>>())
            },
        )?;
        // Destroyed only once the purge is committed, as for keys.
        for material in &materials {
            self.crypto.destroy_secret(material)?;
        }
        Ok(())
    }
}
