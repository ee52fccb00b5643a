//! Queries: one page of a key condition (with filters, either order, a cursor that
//! holds key attributes only), and every item of a partition.

use super::{classify, item::key_of, keys, s, Item, Store, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;

/// One page of a query.
pub struct QueryPage {
    pub items: Vec<Item>,
    /// The key to start the next page from; `None` on the last page.
    pub next: Option<Item>,
}

/// A key condition: `partition = pk`, and optionally `begins_with(sort, prefix)` or
/// `sort BETWEEN low AND high`, plus `attribute = value` filters; read in key order,
/// or newest (highest key) first.
#[derive(Default)]
pub(crate) struct KeyCondition<'a> {
    pub index: Option<keys::Index>,
    pub pk: String,
    pub sk_prefix: Option<&'a str>,
    pub sk_between: Option<(String, String)>,
    pub filters: Vec<(&'a str, AttributeValue)>,
    pub newest_first: bool,
}

/// How many queries one page may take before it returns what it has (more than one
/// only when a filter drops items or DynamoDB cuts a response at 1 MB).
const MAX_QUERY_ROUNDS: usize = 8;

impl Store {
    /// One page of a query in key order, at most `limit` items. Asks for one item more
    /// than needed, so the last page carries no cursor. With a filter, queries again
    /// until the page is full (DynamoDB applies `Limit` before filtering), at most
    /// [`MAX_QUERY_ROUNDS`] times.
    pub(crate) async fn query_page(
        &self,
        cond: KeyCondition<'_>,
        limit: usize,
        start: Option<Item>,
    ) -> Result<QueryPage, StoreError> {
        let (pk_name, sk_name) = match cond.index {
            Some(index) => (index.pk(), index.sk()),
            None => (keys::PK, keys::SK),
        };
        let mut expr = "#pk = :pk".to_string();
        if cond.sk_prefix.is_some() {
            expr.push_str(" AND begins_with(#sk, :prefix)");
        } else if cond.sk_between.is_some() {
            expr.push_str(" AND #sk BETWEEN :low AND :high");
        }
        let filter_expr = (0..cond.filters.len())
            .map(|i| format!("#f{i} = :f{i}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut items: Vec<Item> = Vec::new();
        let mut start = start;
        for _ in 0..MAX_QUERY_ROUNDS {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(cond.index.map(|i| i.name().to_string()))
                .key_condition_expression(&expr)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(&cond.pk))
                .set_exclusive_start_key(start.take())
                .consistent_read(cond.index.is_none())
                .scan_index_forward(!cond.newest_first)
                // A full page each round: with a filter, most of what is read may be dropped.
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
            if let Some(prefix) = cond.sk_prefix {
                query = query
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":prefix", s(prefix));
            }
            if let Some((low, high)) = &cond.sk_between {
                query = query
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":low", s(low))
                    .expression_attribute_values(":high", s(high));
            }
            if !cond.filters.is_empty() {
                query = query.filter_expression(&filter_expr);
                for (i, (attribute, value)) in cond.filters.iter().enumerate() {
                    query = query
                        .expression_attribute_names(format!("#f{i}"), *attribute)
                        .expression_attribute_values(format!(":f{i}"), value.clone());
                }
            }
            let out = query.send().await.map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            if items.len() > limit {
                items.truncate(limit);
                let next = items.last().map(|last| key_of(last, cond.index));
                return Ok(QueryPage { items, next });
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                // DynamoDB stopped early (1 MB per response, or the filter): more may follow.
                Some(more) => start = Some(more),
                None => return Ok(QueryPage { items, next: None }),
            }
        }
        Ok(QueryPage { items, next: start })
    }

    /// Every item of a partition (following DynamoDB's own pages).
    pub(crate) async fn query_all(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}
