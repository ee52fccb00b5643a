//! Items: a value with its key attributes (`Stored`), and the small conversions
//! between Rust values and DynamoDB attribute values.

use super::{keys, Item, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;

/// An item with its key attributes, for `serde_dynamo`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored<T> {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(rename = "GSI2PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(rename = "GSI2SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    pub entity_type: String,
    #[serde(flatten)]
    pub data: T,
}

impl<T: Serialize> Stored<T> {
    pub fn new(entity_type: &str, key: keys::Key, data: T) -> Self {
        Self {
            pk: key.0,
            sk: key.1,
            gsi1pk: None,
            gsi1sk: None,
            gsi2pk: None,
            gsi2sk: None,
            gsi3pk: None,
            gsi3sk: None,
            entity_type: entity_type.into(),
            data,
        }
    }

    /// Puts the item in the index its key names.
    pub fn indexed(mut self, key: keys::IndexKey) -> Self {
        let keys::IndexKey { index, pk, sk } = key;
        let (pk_slot, sk_slot) = match index {
            keys::Index::Gsi1 => (&mut self.gsi1pk, &mut self.gsi1sk),
            keys::Index::Gsi2 => (&mut self.gsi2pk, &mut self.gsi2sk),
            keys::Index::Gsi3 => (&mut self.gsi3pk, &mut self.gsi3sk),
        };
        *pk_slot = Some(pk);
        *sk_slot = Some(sk);
        self
    }

    pub fn to_item(&self) -> Result<Item, StoreError> {
        Ok(serde_dynamo::to_item(self)?)
    }
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let stored: Stored<T> = serde_dynamo::from_item(item)?;
    Ok(stored.data)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key_item(key: &keys::Key) -> Item {
    HashMap::from([(keys::PK.to_string(), s(&key.0)), (keys::SK.to_string(), s(&key.1))])
}

/// The key attributes of a raw item for the given index (`None`: the table), used to
/// build the cursor of a page.
pub(super) fn key_of(item: &Item, index: Option<keys::Index>) -> Item {
    let mut names = vec![keys::PK, keys::SK];
    if let Some(index) = index {
        names.extend([index.pk(), index.sk()]);
    }
    names
        .into_iter()
        .filter_map(|n| item.get(n).map(|v| (n.to_string(), v.clone())))
        .collect()
}

pub(crate) fn bool_value(b: bool) -> AttributeValue {
    AttributeValue::Bool(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Thing {
        id: uuid::Uuid,
        n: u64,
        #[serde(default)]
        maybe: Option<String>,
    }

    #[test]
    fn stored_items_round_trip_with_keys() {
        let thing = Thing {
            id: uuid::Uuid::new_v4(),
            n: 7,
            maybe: None,
        };
        let item = Stored::new("THING", keys::user(thing.id), thing)
            .indexed(keys::IndexKey {
                index: keys::Index::Gsi1,
                pk: "A".into(),
                sk: "B".into(),
            })
            .to_item()
            .unwrap();
        assert_eq!(item["PK"], s(format!("USER#{}", item_id(&item))));
        assert_eq!(item["entity_type"], s("THING"));
        assert_eq!(item["n"], AttributeValue::N("7".into()));
        let back: Thing = from_item(item).unwrap();
        assert_eq!(back.n, 7);
        assert_eq!(back.maybe, None);
    }

    fn item_id(item: &Item) -> String {
        match &item["id"] {
            AttributeValue::S(s) => s.clone(),
            _ => panic!("id"),
        }
    }

    #[test]
    fn cursor_keys_hold_only_key_attributes() {
        let item = HashMap::from([
            ("PK".to_string(), s("a")),
            ("SK".to_string(), s("b")),
            ("GSI1PK".to_string(), s("c")),
            ("GSI1SK".to_string(), s("d")),
            ("password_hash".to_string(), s("secret")),
        ]);
        assert_eq!(key_of(&item, None).len(), 2);
        let k = key_of(&item, Some(keys::Index::Gsi1));
        assert_eq!(k.len(), 4);
        assert!(!k.contains_key("password_hash"));
    }
}
