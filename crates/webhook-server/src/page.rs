//! Lists: `?limit=` (1..=250, default 50) and `?cursor=`, answered as
//! `{"data": [...], "next_cursor": null | "..."}`.
//!
//! History lists (deliveries, messages) page with the sender's index cursors; the
//! configuration lists (organizations, endpoints), held in memory, page by id with a
//! cursor naming the last id returned. Cursors are opaque to clients.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use webhook_sender::{Cursor, PageRequest};

use crate::error::{ApiError, ApiResult};

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 50;

/// The largest page size.
pub const MAX_LIMIT: u32 = 250;

/// What a list takes.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 250 (default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListResponse<T: ToSchema> {
    /// The items, in the list's order.
    pub data: Vec<T>,
    /// Where the next page starts; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl ListParams {
    fn limit(&self) -> ApiResult<usize> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("`limit` must be between 1 and 250"));
        }
        Ok(limit as usize)
    }

    /// The sender's page request for a history list.
    pub(crate) fn history(&self) -> ApiResult<PageRequest> {
        let request = PageRequest::new(self.limit()?).map_err(ApiError::from)?;
        match &self.cursor {
            None => Ok(request),
            Some(text) => {
                let cursor =
                    Cursor::decode(text).map_err(|_| ApiError::invalid("`cursor` is not valid"))?;
                Ok(request.after(cursor))
            }
        }
    }

    /// A page of `items` (sorted by `key`, ascending): those after the cursor's key.
    pub(crate) fn by_key<T, U: ToSchema>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> String,
        view: impl Fn(T) -> U,
    ) -> ApiResult<ListResponse<U>> {
        let limit = self.limit()?;
        let after = match &self.cursor {
            None => None,
            Some(text) => Some(
                URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| ApiError::invalid("`cursor` is not valid"))?,
            ),
        };
        let mut rest: Vec<T> = items
            .into_iter()
            .filter(|item| after.as_ref().is_none_or(|after| key(item) > *after))
            .collect();
        let more = rest.len() > limit;
        rest.truncate(limit);
        let next_cursor = more
            .then(|| rest.last().map(|last| URL_SAFE_NO_PAD.encode(key(last))))
            .flatten();
        Ok(ListResponse {
            data: rest.into_iter().map(view).collect(),
            next_cursor,
        })
    }
}

/// A history page as a list answer.
pub(crate) fn from_history<T, U: ToSchema>(
    page: webhook_sender::Page<T>,
    view: impl Fn(T) -> U,
) -> ListResponse<U> {
    ListResponse {
        data: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor.map(|cursor| cursor.encode()),
    }
}
