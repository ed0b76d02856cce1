//! JSON merge patches (RFC 7386) that also clear what went away.
//!
//! Status types skip empty lists and absent options when serialised, so a
//! merge patch of the new status alone never removes a field the old one
//! had (a worker that finished draining would stay listed forever).
//! [`merge_patch`] compares the two documents and writes an explicit
//! `null` for every object member the new one lacks. Pure.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`: members of `new` that
/// differ, nested objects patched member by member, `null` for members
/// only `old` has. Arrays and scalars are replaced whole, as RFC 7386
/// prescribes. Equal documents give an empty object.
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, old_value) in old {
                match new.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new_value) if new_value == old_value => {}
                    Some(new_value) => {
                        patch.insert(key.clone(), merge_patch(old_value, new_value));
                    }
                }
            }
            for (key, new_value) in new {
                if !old.contains_key(key) {
                    patch.insert(key.clone(), new_value.clone());
                }
            }
            Value::Object(patch)
        }
        (_, new) => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    /// RFC 7386's application of a patch, to check that applying
    /// `merge_patch(a, b)` to `a` gives `b`.
    fn apply(target: &serde_json::Value, patch: &serde_json::Value) -> serde_json::Value {
        let serde_json::Value::Object(members) = patch else {
            return patch.clone();
        };
        let mut out = match target {
            serde_json::Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        for (key, value) in members {
            if value.is_null() {
                out.remove(key);
            } else {
                let merged = apply(out.get(key).unwrap_or(&serde_json::Value::Null), value);
                out.insert(key.clone(), merged);
            }
        }
        serde_json::Value::Object(out)
    }

    #[test]
    fn members_that_went_away_are_cleared() {
        let old = json!({"phase": "Scaling", "workers": {"ready": 3, "draining": ["w-4"]},
                         "gateway": {"endpoint": "http://g:8080"}});
        let new = json!({"phase": "Running", "workers": {"ready": 3}, "gateway": {}});
        let patch = merge_patch(&old, &new);
        assert_eq!(
            patch,
            json!({"phase": "Running", "workers": {"draining": null},
                   "gateway": {"endpoint": null}})
        );
        assert_eq!(apply(&old, &patch), new);
    }

    #[test]
    fn lists_are_replaced_whole_and_equal_documents_give_nothing() {
        let old = json!({"conditions": [{"type": "A"}, {"type": "B"}], "n": 1});
        let new = json!({"conditions": [{"type": "B"}], "n": 1, "added": {"x": true}});
        let patch = merge_patch(&old, &new);
        assert_eq!(
            patch,
            json!({"conditions": [{"type": "B"}], "added": {"x": true}})
        );
        assert_eq!(apply(&old, &patch), new);
        assert_eq!(merge_patch(&new, &new), json!({}));
    }

    #[test]
    fn from_nothing_the_patch_is_the_document() {
        let new = json!({"phase": "Creating"});
        assert_eq!(merge_patch(&serde_json::Value::Null, &new), new);
    }
}
