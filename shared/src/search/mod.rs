//! Message search (API.md "Search"): an index kept in the table by the search indexer (a stream worker,
//! `api::search_indexer`), read by `GET /search/messages` (`query`).
//!
//! Key design: for every distinct prefix of 1..=[`PREFIX_MAX`] characters of every normalised word
//! ([`text`]) of a message, one item
//!
//! | PK | SK | attributes |
//! |---|---|---|
//! | `IDX#<conversationId>#<prefix>` | `<messageId>` | `words`: the message's distinct words, space-joined |
//!
//! - Per conversation, so a query reads only the caller's conversations, and a member who leaves stops
//!   finding its messages at once (the query judges membership, not the index). Deleting a conversation
//!   purges its messages; each REMOVE takes the message's entries with it.
//! - The sort key is the message id (a ULID): a partition reads newest first, and a cursor is an id.
//! - One term finds its entries directly (`tomo` is the key of `tomorrow`); the other terms are
//!   checked against the entry's `words`, so an AND reads one partition per conversation, however
//!   many terms. Terms longer than `PREFIX_MAX` read the partition of their first `PREFIX_MAX`
//!   characters and are checked the same way.
//! - Words are stored cut to [`STORED_WORD_MAX`] characters; when the list passes [`WORDS_BUDGET`]
//!   bytes (a long message) it is left out and the query checks the message's own text, so every
//!   entry stays under 1 KB: one write unit.
//! - Encrypted and deleted messages have no entries. The query re-reads the page's messages (one
//!   BatchGetItem) and checks them against their current text, so nothing stale is ever returned.
//!
//! Cost (BENCHMARKS.md "Search (issue 13)" has the measured figures):
//! - Writes: one put per distinct prefix of a new message's words: about 4-5 per word of a typical
//!   chat message, 1 WCU each (a 10-word message about 40 WCU), as many deletes (1 WCU each) when it is
//!   deleted, and for an edit the new text's entries plus deletes of the prefixes it lost. A change
//!   that leaves the words as they are (reactions, reply counts) writes nothing.
//! - Reads per query for a caller in N conversations: the session check and rate-limit counter every
//!   route has, `ceil(N/100)` Queries of the caller's member items (GSI1), N index Queries (0.5 RCU
//!   each at the first page of up to 25 entries, so about N/2 RCU), at most [`query::MAX_FOLLOW_UPS`]
//!   further index pages, and one BatchGetItem of at most `limit` messages plus their conversations'
//!   member items (strongly consistent, 1 RCU per item under 4 KB). N = 1: 4 calls and a few RCU;
//!   N = 200: about 205 calls and about 150 RCU. With `conversationId`, the membership read replaces
//!   the member-item Queries and N = 1.
//! - If a deployment outgrows it (conversations in the thousands per user, ranking by relevance), this
//!   worker is the place to feed a search engine (OpenSearch) instead; the route's contract stays.

pub mod indexer;
pub mod query;
pub mod text;

/// Prefix lengths indexed per word: 1..=8 characters. Longer terms are matched on the word list.
pub const PREFIX_MAX: usize = 8;
/// Characters of a word kept in an entry's word list.
pub const STORED_WORD_MAX: usize = 32;
/// Bytes of word list an entry carries at most (so the entry stays under 1 KB, one write unit).
pub const WORDS_BUDGET: usize = 800;
