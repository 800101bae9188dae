//! What a change to a message does to the index (see the module above for the key design): the index
//! entries of the old text that the new text has no more are deleted, and when the words changed, every
//! entry of the new text is put again with the new word list. Encrypted and deleted messages have no
//! words, so an edit that deletes removes every entry, and a REMOVE (a purged conversation) too.
//!
//! Idempotent: every write is a put or delete of a key derived from the message id and a prefix, so a
//! record applied twice leaves what it left the first time, and replaying a run of records in stream
//! order (what Lambda does after a failure) ends where the last one says.

use std::collections::BTreeSet;

use serde_dynamo::AttributeValue;

use super::{text, PREFIX_MAX, STORED_WORD_MAX, WORDS_BUDGET};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{IndexWrite, MessageRecord};

/// The searchable part of one image of a message item: its distinct normalised words (each cut to
/// [`STORED_WORD_MAX`] characters), none when it is encrypted or deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    pub words: Vec<String>,
}

impl Indexed {
    /// The words of a message with this body and flags.
    pub fn of(body: &str, encrypted: bool, deleted: bool) -> Self {
        if encrypted || deleted {
            return Indexed::default();
        }
        let mut seen = BTreeSet::new();
        let words = text::distinct_words(body)
            .into_iter()
            .map(|w| text::cut(&w, STORED_WORD_MAX).to_owned())
            .filter(|w| seen.insert(w.clone()))
            .collect();
        Indexed { words }
    }

    pub fn of_record(record: &MessageRecord) -> Self {
        Self::of(&record.body, record.encrypted, record.deleted)
    }

    /// From a stream image (`NewImage`/`OldImage`); absent attributes read as empty/false, so the
    /// worker copes with message items of any version.
    pub fn of_image(image: &std::collections::HashMap<String, AttributeValue>) -> Self {
        let flag = |name: &str| matches!(image.get(name), Some(AttributeValue::Bool(true)));
        let body = match image.get("body") {
            Some(AttributeValue::S(body)) => body.as_str(),
            _ => "",
        };
        Self::of(body, flag("encrypted"), flag("deleted"))
    }

    /// The distinct prefixes (1..=[`PREFIX_MAX`] characters) of the words: the entries' keys.
    pub fn prefixes(&self) -> BTreeSet<String> {
        self.words
            .iter()
            .flat_map(|w| text::prefixes(w, PREFIX_MAX).map(str::to_owned))
            .collect()
    }

    /// The `words` attribute every entry carries: the words joined by spaces, or `None` when that
    /// would pass [`WORDS_BUDGET`] bytes (the entry then stays under 1 KB, one write unit, and a query
    /// checks such a message against its text instead).
    pub fn stored(&self) -> Option<String> {
        let joined = self.words.join(" ");
        (joined.len() <= WORDS_BUDGET).then_some(joined)
    }
}

/// The index writes that take one message from the state of `before` (every image the batch held of
/// it but the last, oldest first: what earlier, possibly applied, records may have put) to `after`
/// (its last image; empty words when removed).
pub fn changes(conversation_id: &str, message_id: &str, before: &[Indexed], after: &Indexed) -> Vec<IndexWrite> {
    let keep = after.prefixes();
    let mut writes = Vec::new();
    let stale: BTreeSet<String> = before
        .iter()
        .flat_map(Indexed::prefixes)
        .filter(|p| !keep.contains(p))
        .collect();
    for prefix in stale {
        writes.push(IndexWrite::Delete {
            conversation_id: conversation_id.to_owned(),
            prefix,
            message_id: message_id.to_owned(),
        });
    }
    // Nothing searchable changed (a reaction, a reply count, a read of the same text): no writes.
    let unchanged = !before.is_empty() && before.iter().all(|b| b.words == after.words);
    if !unchanged {
        let words = after.stored();
        for prefix in keep {
            writes.push(IndexWrite::Put {
                conversation_id: conversation_id.to_owned(),
                prefix,
                message_id: message_id.to_owned(),
                words: words.clone(),
            });
        }
    }
    writes
}

/// Applies one message's change to the index.
pub async fn apply(
    context: &AppContext,
    conversation_id: &str,
    message_id: &str,
    before: &[Indexed],
    after: &Indexed,
) -> Result<usize, ApiError> {
    let writes = changes(conversation_id, message_id, before, after);
    context.store.write_index(&writes).await?;
    Ok(writes.len())
}

/// Indexes a stored message as it is now, as if its item had just been written (for tests and
/// back-fills: the stream does this for every message).
pub async fn index(context: &AppContext, record: &MessageRecord) -> Result<usize, ApiError> {
    apply(
        context,
        &record.conversation_id,
        &record.id,
        &[],
        &Indexed::of_record(record),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes_of(writes: &[IndexWrite], put: bool) -> Vec<String> {
        writes
            .iter()
            .filter_map(|w| match (w, put) {
                (IndexWrite::Put { prefix, .. }, true) | (IndexWrite::Delete { prefix, .. }, false) => {
                    Some(prefix.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_message_puts_every_prefix_once() {
        let after = Indexed::of("Café café CAFÉ at", false, false);
        assert_eq!(after.words, ["cafe", "at"]);
        let writes = changes("C", "M", &[], &after);
        assert_eq!(prefixes_of(&writes, true), ["a", "at", "c", "ca", "caf", "cafe"]);
        assert!(prefixes_of(&writes, false).is_empty());
        match &writes[0] {
            IndexWrite::Put { words, .. } => assert_eq!(words.as_deref(), Some("cafe at")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_words_index_their_first_prefixes_only() {
        let after = Indexed::of("Supercalifragilistic", false, false);
        assert_eq!(after.prefixes().len(), PREFIX_MAX);
        assert!(after.prefixes().contains("supercal"));
    }

    #[test]
    fn an_edit_removes_what_the_new_text_lost_and_rewrites_the_rest() {
        let old = Indexed::of("see you tomorrow", false, false);
        let new = Indexed::of("see you today", false, false);
        let writes = changes("C", "M", std::slice::from_ref(&old), &new);
        assert_eq!(
            prefixes_of(&writes, false),
            ["tom", "tomo", "tomor", "tomorr", "tomorro", "tomorrow"]
        );
        assert!(prefixes_of(&writes, true).contains(&"toda".to_owned()));
        assert!(
            prefixes_of(&writes, true).contains(&"to".to_owned()),
            "kept, with the new word list"
        );
    }

    #[test]
    fn deleted_and_encrypted_messages_have_no_entries() {
        let old = Indexed::of("secret plans", false, false);
        let deleted = Indexed::of("", false, true);
        let writes = changes("C", "M", std::slice::from_ref(&old), &deleted);
        assert!(prefixes_of(&writes, true).is_empty());
        assert_eq!(prefixes_of(&writes, false).len(), old.prefixes().len());
        assert!(changes("C", "M", &[], &Indexed::of("c2VjcmV0", true, false)).is_empty());
    }

    #[test]
    fn a_change_that_keeps_the_words_writes_nothing() {
        let same = Indexed::of("hello there", false, false);
        assert!(changes("C", "M", &[same.clone(), same.clone()], &same).is_empty());
    }

    #[test]
    fn a_batch_of_several_images_cleans_up_every_earlier_one() {
        // INSERT "alpha", MODIFY to "beta", MODIFY to "gamma" in one batch, possibly applied before.
        let images = [Indexed::of("alpha", false, false), Indexed::of("beta", false, false)];
        let writes = changes("C", "M", &images, &Indexed::of("gamma", false, false));
        let deleted = prefixes_of(&writes, false);
        assert!(deleted.contains(&"alpha".to_owned()) && deleted.contains(&"beta".to_owned()));
        assert!(!deleted.contains(&"g".to_owned()));
        assert_eq!(prefixes_of(&writes, true), ["g", "ga", "gam", "gamm", "gamma"]);
    }

    #[test]
    fn a_long_message_stores_no_word_list_and_stays_one_write_unit_per_entry() {
        let body: Vec<String> = (0..400).map(|i| format!("word{i}")).collect();
        let long = Indexed::of(&body.join(" "), false, false);
        assert_eq!(long.stored(), None);
        let short = Indexed::of("a few words", false, false);
        assert_eq!(short.stored().as_deref(), Some("a few words"));
    }
}
