//! Message search (docs/API-GUIDE.md "Search"): an index kept in the table by the search indexer (a stream worker,
//! `api::search_indexer`), read by `GET /search/messages` (`query`).
//!
//! Key design (issue 21): one compact item per indexed message,
//!
//! | PK | SK | attributes |
//! |---|---|---|
//! | `SRCH#<conversationId>` | `<messageId>` | `words`: the message's distinct normalised words ([`text`]), each cut to [`STORED_WORD_MAX`] characters, with a space before and after each: `" see you tomorrow "` |
//!
//! - A term matches a word that starts with it, and every word in `words` has a space before it, so
//!   "some word starts with `tomo`" is `contains(words, " tomo")`; a query's AND of terms is one
//!   FilterExpression (`contains(#w, :t0) AND contains(#w, :t1) ...`) evaluated by DynamoDB on the
//!   items it reads, so only matching keys come back (`ProjectionExpression: SK`).
//! - One partition per conversation, so a query reads only the caller's conversations, and a member
//!   who leaves stops finding its messages at once (the query judges membership, not the index).
//!   Deleting a conversation purges its messages; each REMOVE takes the message's item with it.
//! - The sort key is the message id (a ULID): a partition reads newest first, and a cursor is an id.
//! - One item, one write unit: the item is a few hundred bytes for a chat message and never passes
//!   1 KB: when the word list would pass [`WORDS_BUDGET`] bytes (a long message, over about 130
//!   distinct words) the item is written without it, "check the text": the filter lets it through
//!   and the query reads the message itself.
//! - Encrypted and deleted messages (and text of punctuation only) have no item. The query re-reads
//!   the page's messages (one strongly consistent BatchGetItem) and checks them against their current
//!   text, so nothing stale is ever returned.
//! - An edit that changes the words puts the item again; a delete (or a purge's REMOVE) deletes it;
//!   a change that leaves the words as they are (reactions, reply counts) writes nothing. Every write
//!   is a put or delete of a key derived from the message id with what the last image says: idempotent,
//!   and a replayed run of records ends where the last one says ([`indexer`]).
//!
//! Cost (BENCHMARKS.md "Search (issue 21)" has the measured figures):
//! - Writes: 1 WCU per message indexed (a send with words, an edit that changes them, a delete),
//!   whatever its length; nothing for encrypted messages or changes that keep the words. The indexer
//!   writes a stream batch's items 25 to a BatchWriteItem, so 100 sends are 4 calls. (Issue 13's
//!   design wrote one item per distinct word prefix of 1..=8 characters: 58 WCU for a typical
//!   14-word message, 1,201 for a long one, 7x the send itself.)
//! - Reads per query for a caller in N conversations: the session check every route has,
//!   `ceil(N/100)` Queries of the caller's member items (GSI1), N index Queries of at most
//!   [`query::FIRST_PAGE_MANY`] items each ([`query::FIRST_PAGE_ONE`] when N = 1), at most
//!   [`query::MAX_FOLLOW_UPS`] further Queries of [`query::FOLLOW_UP_PAGE`] items, and one
//!   BatchGetItem of at most `limit` messages plus their conversations' member items (strongly
//!   consistent, 1 RCU per item under 4 KB). So at most `25 N + 2,000` index items (`2,100` when
//!   N = 1), each under 1 KB. A Query is charged for the items it reads, matching or not (0.5 RCU
//!   per 4 KB read, at least 0.5): a typical item is about 160 bytes, so a first page of 25 is 0.5 RCU,
//!   a page of 100 is 2 and a follow-up of 200 is 4; at most 3.5, 12.5 and 25 RCU if every item
//!   were 1 KB. The bound: `0.5 N + 40` RCU of index reads typical, `3.5 N + 250` worst, plus the
//!   page's messages and member items. Measured: N = 1, a match among the newest messages: 4 calls,
//!   3 RCU; N = 200, a match in each: 205 calls, 147 RCU (100 of them index reads), as issue 13's
//!   design; N = 200, no match: 203 calls, 107 RCU; one conversation of 3,000 messages, a term only in
//!   the oldest: 2 requests (12 and 9 calls, 33.5 and 16.5 RCU), the first an empty page with a
//!   cursor.
//! - The trade-off: issue 13's items held only matches, so its reads went straight to them; these
//!   hold every message, so a term that matches rarely costs reading the conversation's items until
//!   matches turn up (about 50 items per RCU), and a match deep in a long history may come after a
//!   few pages that hold fewer than `limit` items (each with a `nextCursor`, as the API allows). On
//!   the bill that is the right way round: on-demand, a write unit costs five read units, so the 57
//!   WCU a typical message no longer writes pay for about 285 RCU (some 14,000 items read) per
//!   message sent, far more than chat searches read; and on the local stack DynamoDB Local (one
//!   core) carries one write per message where it collapsed under 58.
//! - Alternatives weighed: an item per distinct word (no prefixes) is about 14 WCU for a typical
//!   message and still needs a range read per term; an index per user (fan-out on write) makes a query
//!   one Query but multiplies every write by the members (a 1,000-member group: 1,000x) and must be
//!   rewritten on every membership change; storing long messages' full lists (up to about 16 KB) would
//!   spare their text checks at up to 16 WCU each, where "check the text" keeps every message at 1.
//! - If a deployment outgrows it (conversations in the thousands per user, long histories searched
//!   for rare words, ranking by relevance), this worker is the place to feed a search engine
//!   (OpenSearch) instead; the route's contract stays.
//! - A table indexed by issue 13's design keeps its `IDX#<conversationId>#<prefix>` items (nothing
//!   reads them any more) and has no `SRCH#` item for a message the new indexer has not seen change:
//!   the stream reaches back 24 hours, so older messages need a back-fill ([`indexer::index`] per
//!   message) and the old items a one-off delete.

pub mod indexer;
pub mod query;
pub mod text;

/// Characters of a word kept in an item's word list (a longer term is filtered by its first
/// `STORED_WORD_MAX` characters, then checked against the text).
pub const STORED_WORD_MAX: usize = 32;
/// Bytes of word list (spaces included) an item carries at most, so the item (keys and attribute names
/// included) stays under 1 KB: one write unit.
pub const WORDS_BUDGET: usize = 900;
